// Pointer networks: decoding returns permutations (chosen positions are masked), teacher-forced logits agree with
// what greedy decoding scores, an exhaustive beam finds the best permutation, and a small network learns to sort.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "nn/pointer_net.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {

bool is_permutation(std::vector<int64_t> v, int64_t n) {
  std::sort(v.begin(), v.end());
  for (int64_t i = 0; i < n; ++i)
    if (v[i] != i) return false;
  return static_cast<int64_t>(v.size()) == n;
}

// Sum of log p(C_i | C_<i) that forward (with masking) gives a permutation of one input set.
double sequence_log_prob(nn::PointerNet& net, const Tensor& x, const std::vector<int64_t>& perm) {
  const int64_t n = static_cast<int64_t>(perm.size());
  Tensor lp = tg::log_softmax(net.forward(x.unsqueeze(0), tg::tensor(perm, {1, n})), -1);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += lp.select(0, 0).select(0, i).select(0, perm[i]).item<double>();
  return s;
}

struct OneThread {
  int saved = tg::get_num_threads();
  OneThread() { tg::set_num_threads(1); }
  ~OneThread() { tg::set_num_threads(saved); }
};

}  // namespace

TEST_SUITE("rnn") {

TEST_CASE("pointer net: greedy and beam decoding return permutations, logits match what decoding scores") {
  tg::manual_seed(50);
  nn::PointerNet net({.input_dim = 2, .hidden = 16, .mask_chosen = true});
  net.to(tg::kFloat64);
  Tensor x = tg::rand({3, 6, 2}, tg::kFloat64);
  Tensor pred = net.greedy(x);
  CHECK(pred.sizes() == tg::Shape{3, 6});
  for (int64_t b = 0; b < 3; ++b) CHECK(is_permutation(pred.select(0, b).to_vector<int64_t>(), 6));
  // Teacher-forcing the greedy choices: each step's argmax is the choice itself.
  Tensor u = net.forward(x, pred);
  CHECK(tg::equal(tg::argmax(u, -1), pred));
  auto hyps = net.beam_search(x.select(0, 0), 3);
  REQUIRE(!hyps.empty());
  for (auto& h : hyps) CHECK(is_permutation(h.tokens, 6));
  CHECK(net.greedy(x, 2).sizes() == tg::Shape{3, 2});
}

TEST_CASE("pointer net: an exhaustive beam finds the most probable permutation") {
  tg::manual_seed(51);
  nn::PointerNet net({.input_dim = 1, .hidden = 8, .mask_chosen = true});
  net.to(tg::kFloat64);
  Tensor x = tg::rand({4, 1}, tg::kFloat64);
  std::vector<int64_t> perm(4);
  std::iota(perm.begin(), perm.end(), 0);
  double best = -1e300;
  std::vector<int64_t> arg;
  do {
    const double s = sequence_log_prob(net, x, perm);
    if (s > best) best = s, arg = perm;
  } while (std::next_permutation(perm.begin(), perm.end()));
  auto hyps = net.beam_search(x, 24);  // 4! prefixes: nothing is pruned
  REQUIRE(!hyps.empty());
  CHECK(hyps[0].tokens == arg);
  CHECK(hyps[0].score == doctest::Approx(best).epsilon(1e-9));
  auto g = net.greedy(x.unsqueeze(0)).select(0, 0).to_vector<int64_t>();
  CHECK(sequence_log_prob(net, x, g) <= best + 1e-12);
}

TEST_CASE("pointer net: learns to sort five numbers") {
  OneThread one;  // tiny products: a second thread only adds waiting on a loaded machine
  tg::manual_seed(52);
  const int64_t B = 64, n = 5;
  nn::PointerNet net({.input_dim = 1, .hidden = 32});
  tg::optim::Adam opt(net.parameters(), {.lr = 1e-2});
  auto batch = [&](int64_t b) {
    Tensor x = tg::rand({b, n, 1});
    std::vector<float> v = x.to_vector<float>();
    std::vector<int64_t> idx(b * n);
    for (int64_t r = 0; r < b; ++r) {
      std::iota(idx.begin() + r * n, idx.begin() + (r + 1) * n, 0);
      std::sort(idx.begin() + r * n, idx.begin() + (r + 1) * n,
                [&](int64_t a, int64_t c) { return v[r * n + a] < v[r * n + c]; });
    }
    return std::pair{x, tg::tensor(idx, {b, n})};
  };
  double loss_v = 0;
  for (int step = 0; step < 300; ++step) {
    auto [x, order] = batch(B);
    Tensor loss = F::cross_entropy(net.forward(x, order).reshape({-1, n}), order.reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_v = loss.item<double>();
  }
  auto [x, order] = batch(200);
  Tensor pred = net.greedy(x);
  auto p = pred.to_vector<int64_t>(), w = order.to_vector<int64_t>();
  int exact = 0, positions = 0;
  for (int64_t r = 0; r < 200; ++r) {
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) {
      positions += p[r * n + i] == w[r * n + i];
      ok = ok && p[r * n + i] == w[r * n + i];
    }
    exact += ok;
  }
  MESSAGE("sorting n=5: exact ", exact, "/200, positions ", positions, "/1000, final loss ", loss_v);
  CHECK(positions >= 800);
  CHECK(exact >= 100);
}

}  // TEST_SUITE
