// Sequence-to-sequence: the attention modules (weights, masking, gradcheck), beam search on a hand-made model with
// a known best sequence that greedy decoding misses, the agreement of teacher-forced and step-by-step decoding,
// and a small model that learns to reverse sequences and decodes them greedily and with beam search.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "nn/seq2seq.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {
double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a - b)).item<double>();
}

// A token-level Markov "model": P(next | last). Tokens 0 = eos, 1 = A, 2 = B; 3 = start (input only).
// Greedy takes A (0.55) and then keeps preferring A; the best complete sequence is B eos (0.45 * 0.9 = 0.405).
const double kP[4][3] = {{1.0, 0.0, 0.0}, {0.30, 0.36, 0.34}, {0.90, 0.05, 0.05}, {0.0, 0.55, 0.45}};

nn::BeamStepFn markov_step() {
  return [](const Tensor& tokens, const Tensor&) {
    std::vector<double> lp;
    for (int64_t t : tokens.to_vector<int64_t>())
      for (int v = 0; v < 3; ++v) lp.push_back(std::log(kP[t][v]));
    return tg::tensor(lp, {tokens.size(0), 3});
  };
}

// The most probable eos-terminated sequence of at most max_len tokens, by enumeration.
std::pair<std::vector<int64_t>, double> brute_force(int64_t max_len) {
  std::pair<std::vector<int64_t>, double> best{{}, -1e300};
  std::function<void(std::vector<int64_t>&, int64_t, double)> go = [&](std::vector<int64_t>& seq, int64_t last,
                                                                       double score) {
    for (int64_t v = 0; v < 3; ++v) {
      const double s = score + std::log(kP[last][v]);
      seq.push_back(v);
      if (v == 0) {
        if (s > best.second) best = {seq, s};
      } else if (static_cast<int64_t>(seq.size()) < max_len) {
        go(seq, v, s);
      }
      seq.pop_back();
    }
  };
  std::vector<int64_t> seq;
  go(seq, 3, 0.0);
  return best;
}

}  // namespace

TEST_SUITE("rnn") {

TEST_CASE("seq2seq attention: weights are a distribution over valid keys, gradcheck") {
  tg::manual_seed(40);
  nn::BahdanauAttention add(3, 4, 5);
  nn::LuongAttention gen(3, 4, true), dot(4, 4);
  add.to(tg::kFloat64);
  gen.to(tg::kFloat64);
  Tensor q = tg::randn({2, 3, 3}, tg::kFloat64), k = tg::randn({2, 5, 4}, tg::kFloat64);
  Tensor mask = tg::lt(tg::arange(5.0).unsqueeze(0), tg::tensor(std::vector<int64_t>{5, 2}).unsqueeze(1));
  for (nn::SeqAttention* a : std::initializer_list<nn::SeqAttention*>{&add, &gen}) {
    INFO(a->name());
    auto [ctx, w] = a->forward(q, k, mask);
    CHECK(ctx.sizes() == tg::Shape{2, 3, 4});
    CHECK(max_abs_diff(w.sum(-1), tg::ones({2, 3}, tg::kFloat64)) < 1e-12);
    CHECK(tg::max(tg::abs(w.select(0, 1).narrow(1, 2, 3))).item<double>() == 0);  // masked keys
    std::vector<Tensor> leaves = a->parameters();
    leaves.push_back(q.clone().requires_grad_());
    leaves.push_back(k.clone().requires_grad_());
    const size_t n = leaves.size();
    std::string report;
    auto fn = [&](const std::vector<Tensor>& v) { return std::get<0>(a->forward(v[n - 2], v[n - 1], mask)); };
    CHECK_MESSAGE(tg::gradcheck(fn, leaves, {}, &report), report);
  }
  CHECK_THROWS_AS(nn::LuongAttention(3, 4), tg::Error);  // dot needs equal sizes
  CHECK(std::get<1>(dot.forward(tg::randn({1, 1, 4}), tg::randn({1, 6, 4}))).sizes() == tg::Shape{1, 1, 6});
}

TEST_CASE("beam search: finds the known best sequence that greedy decoding misses") {
  auto best = brute_force(6);
  CHECK(best.first == std::vector<int64_t>{2, 0});  // B eos
  auto greedy = nn::beam_search(markov_step(), 3, 0, 1, 6);
  REQUIRE(!greedy.empty());
  CHECK(greedy[0].tokens.front() == 1);  // greedy commits to A
  CHECK(greedy[0].score < best.second - 0.5);
  for (int64_t beam : {2, 3, 8}) {
    INFO("beam ", beam);
    auto hyps = nn::beam_search(markov_step(), 3, 0, beam, 6);
    REQUIRE(!hyps.empty());
    CHECK(hyps[0].tokens == best.first);
    CHECK(hyps[0].score == doctest::Approx(best.second));
    CHECK(static_cast<int64_t>(hyps.size()) <= beam);
    for (size_t i = 1; i < hyps.size(); ++i) CHECK(hyps[i - 1].normalized >= hyps[i].normalized);
  }
  // A wide beam is exhaustive here: its second hypothesis is the second best sequence, A B eos (0.55 * .34 * .9).
  auto wide = nn::beam_search(markov_step(), 3, 0, 27, 4);
  REQUIRE(wide.size() >= 2);
  CHECK(wide[1].tokens == std::vector<int64_t>{1, 2, 0});
  CHECK(wide[1].score == doctest::Approx(std::log(0.55 * 0.34 * 0.9)));
}

TEST_CASE("seq2seq: teacher-forced logits equal step-by-step decoding, every attention") {
  tg::manual_seed(41);
  for (std::string att : {"none", "additive", "dot", "general"}) {
    INFO(att);
    nn::Seq2Seq m({.src_vocab = 7, .tgt_vocab = 6, .embed = 5, .hidden = 8, .num_layers = 2, .attention = att,
                   .reverse_source = true});
    m.eval();
    Tensor src = tg::randint(3, 7, {2, 5}), tgt = tg::randint(0, 6, {2, 4});
    Tensor len = tg::tensor(std::vector<int64_t>{5, 3});
    Tensor logits = m.forward(src, tgt, len);
    CHECK(logits.sizes() == tg::Shape{2, 4, 6});
    tg::NoGradGuard g;
    auto enc = m.encode(src, len);
    Tensor h = enc.h, c = enc.c;
    for (int64_t t = 0; t < 4; ++t) {
      auto [y, st] = m.decoder->forward(m.tgt_embed->forward(tgt.narrow(1, t, 1)), std::tuple{h, c});
      h = std::get<0>(st);
      c = std::get<1>(st);
      CHECK(max_abs_diff(m.readout(y, enc), logits.narrow(1, t, 1)) < 1e-5);
    }
    // Padding after a source's length changes nothing.
    Tensor src2 = src.clone();
    {
      src2.select(0, 1).narrow(0, 3, 2).fill_(4.0);
    }
    CHECK(max_abs_diff(m.forward(src2, tgt, len), logits) < 1e-6);
  }
}

TEST_CASE("seq2seq: learns to reverse sequences, greedy and beam search decode them") {
  // One thread: these products are too small to gain from two, and on a loaded machine every parallel region can
  // wait a scheduler slice for its second thread.
  const int threads = tg::get_num_threads();
  tg::set_num_threads(1);
  tg::manual_seed(42);
  const int64_t B = 32, S = 5, V = 10, bos = 1, eos = 2;  // 0 pad, 1 bos, 2 eos, 3..9 symbols
  nn::Seq2Seq m({.src_vocab = V, .tgt_vocab = V, .embed = 16, .hidden = 48, .attention = "dot", .bos = bos,
                 .eos = eos});
  tg::optim::Adam opt(m.parameters(), {.lr = 1e-2});
  // A batch: sources of lengths 3..5 (padded), targets = reversed source then eos.
  auto batch = [&](int64_t n) {
    Tensor src = tg::randint(3, V, {n, S}), len = tg::randint(3, S + 1, {n});
    std::vector<int64_t> s = src.to_vector<int64_t>(), l = len.to_vector<int64_t>(), tin(n * (S + 1), 0),
                         tout(n * (S + 1), 0);
    for (int64_t b = 0; b < n; ++b) {
      tin[b * (S + 1)] = bos;
      for (int64_t t = 0; t < l[b]; ++t) tout[b * (S + 1) + t] = s[b * S + l[b] - 1 - t];
      tout[b * (S + 1) + l[b]] = eos;
      for (int64_t t = 0; t < S; ++t) tin[b * (S + 1) + t + 1] = tout[b * (S + 1) + t];
      for (int64_t t = l[b]; t < S; ++t) s[b * S + t] = 0;
    }
    return std::tuple{tg::tensor(s, {n, S}), len, tg::tensor(tin, {n, S + 1}), tg::tensor(tout, {n, S + 1})};
  };
  double loss_v = 0;
  for (int step = 0; step < 200; ++step) {
    auto [src, len, tin, tout] = batch(B);
    Tensor logits = m.forward(src, tin, len);
    // pad (0) positions after eos are ignored
    Tensor target = tg::where(tg::eq(tout, 0.0), tg::full({}, -100.0, tg::kInt64), tout);
    Tensor loss = F::cross_entropy(logits.reshape({-1, V}), target.reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_v = loss.item<double>();
  }
  CHECK(loss_v < 0.2);
  auto [src, len, tin, tout] = batch(40);
  Tensor pred = m.greedy(src, S + 1, len);
  auto p = pred.to_vector<int64_t>(), want = tout.to_vector<int64_t>(), l = len.to_vector<int64_t>();
  int correct = 0, beam_correct = 0;
  for (int64_t b = 0; b < 40; ++b) {
    bool ok = true;
    for (int64_t t = 0; t <= l[b]; ++t) ok = ok && p[b * pred.size(1) + t] == want[b * (S + 1) + t];
    correct += ok;
    auto hyps = m.beam_search(src.select(0, b).narrow(0, 0, l[b]), 3, S + 1);
    std::vector<int64_t> w(want.begin() + b * (S + 1), want.begin() + b * (S + 1) + l[b] + 1);
    beam_correct += !hyps.empty() && hyps[0].tokens == w;
  }
  MESSAGE("reverse task: greedy ", correct, "/40, beam ", beam_correct, "/40, final loss ", loss_v);
  CHECK(correct >= 36);
  CHECK(beam_correct >= 36);
  tg::set_num_threads(threads);
}

}  // TEST_SUITE
