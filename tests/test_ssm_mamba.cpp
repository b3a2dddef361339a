// Mamba and MambaLM (nn/mamba.h): PyTorch parity of the selective scan and of a block (tests/make_fixtures.py,
// ssm_fixtures), float64 gradcheck of the block, fused against reference scan inside the block, the step API equal
// to the parallel forward, and MambaLM's shapes, tied head and training signal.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parity.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a.to(tg::kFloat64) - b.to(tg::kFloat64))).item<double>();
}

nn::MambaOptions tiny_block() { return {.d_model = 4, .d_state = 3, .d_conv = 3, .expand = 2}; }

}  // namespace

TEST_SUITE("ssm") {

TEST_CASE("selective_scan parity with the PyTorch reference") {
  auto cases = tg_test::load_cases(tg_test::kFixtures + "/ssm.safetensors");
  tg_test::Case& c = cases.at("selective_scan");
  std::vector<Tensor> in;
  for (const char* k : {"u", "delta", "A", "B", "C", "D"}) in.push_back(c.inputs.at(k).clone().requires_grad_());
  Tensor y = F::selective_scan(in[0], in[1], in[2], in[3], in[4], in[5]);
  std::string summary;
  tg_test::compare("out", y, c.outs.at(0), summary);
  tg::sum(y * c.w).backward();
  int i = 0;
  for (const char* k : {"u", "delta", "A", "B", "C", "D"}) tg_test::compare(k, in[i++].grad(), c.grads.at(k), summary);
  MESSAGE("selective_scan:", summary);
}

TEST_CASE("Mamba block parity with the PyTorch reference") {
  auto cases = tg_test::load_cases(tg_test::kFixtures + "/ssm.safetensors");
  tg_test::Case& c = cases.at("mamba");
  nn::Mamba m({.d_model = 6, .d_state = 4, .d_conv = 3, .expand = 2, .dt_rank = 1}, tg::kFloat64);
  std::map<std::string, Tensor> sd;
  for (auto& [k, v] : c.inputs)
    if (k.rfind("param.", 0) == 0) sd[k.substr(6)] = v;
  m.load_state_dict(sd);
  Tensor x = c.inputs.at("input").clone().requires_grad_();
  Tensor y = m.forward(x);
  std::string summary;
  tg_test::compare("out", y, c.outs.at(0), summary);
  tg::sum(y * c.w).backward();
  tg_test::compare("input", x.grad(), c.grads.at("input"), summary);
  for (auto& [k, p] : m.named_parameters()) tg_test::compare(k, p.grad(), c.grads.at("param." + k), summary);
  MESSAGE("mamba:", summary);
}

TEST_CASE("Mamba block: float64 gradcheck, and the fused scan equals the reference inside the block") {
  tg::manual_seed(72);
  nn::Mamba m(tiny_block(), tg::kFloat64);
  Tensor x = tg::randn({2, 5, 4}, tg::kFloat64).requires_grad_();
  std::vector<Tensor> leaves{x};
  for (auto& p : m.parameters()) leaves.push_back(p);
  std::string report;
  CHECK_MESSAGE(tg::gradcheck([&](const std::vector<Tensor>& v) { return m.forward(v[0]); }, leaves, {}, &report),
                report);

  auto grads = [&](bool fused) {
    m.fused_scan = fused;
    m.zero_grad();
    Tensor xi = x.detach().clone().requires_grad_();
    Tensor y = m.forward(xi);
    tg::sum(y * y).backward();
    std::vector<Tensor> g{y.detach(), xi.grad()};
    for (auto& p : m.parameters()) g.push_back(p.grad());
    return g;
  };
  auto a = grads(true), b = grads(false);
  for (size_t i = 0; i < a.size(); ++i) CHECK(max_abs_diff(a[i], b[i]) < 1e-12);
}

TEST_CASE("Mamba and MambaLM: step-by-step generation equals the parallel forward") {
  tg::manual_seed(73);
  nn::Mamba m(tiny_block(), tg::kFloat64);
  Tensor x = tg::randn({3, 7, 4}, tg::kFloat64);
  Tensor y = m.forward(x);
  nn::MambaState s = m.initial_state(3);
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < 7; ++t) ys.push_back(m.step(x.select(1, t), s));
  CHECK(max_abs_diff(tg::stack(ys, 1), y) < 1e-12);

  nn::MambaLM lm({.vocab_size = 11, .d_model = 8, .n_layer = 2, .d_state = 4}, tg::kFloat64);
  Tensor tok = tg::randint(0, 11, {2, 6});
  Tensor logits = lm.forward(tok);
  CHECK(logits.sizes() == tg::Shape{2, 6, 11});
  auto states = lm.initial_state(2);
  std::vector<Tensor> ls;
  for (int64_t t = 0; t < 6; ++t) ls.push_back(lm.step(tok.select(1, t), states));
  CHECK(max_abs_diff(tg::stack(ls, 1), logits) < 1e-12);
}

TEST_CASE("MambaLM: tied head, layer norms option, loss falls under Adam, errors") {
  tg::manual_seed(74);
  nn::MambaLM lm({.vocab_size = 7, .d_model = 8, .n_layer = 1, .d_state = 4});
  CHECK(lm.lm_head->weight.storage().get() == lm.embedding->weight.storage().get());
  bool has_head = false;
  for (auto& [k, p] : lm.named_parameters()) has_head |= k == "lm_head.weight";
  CHECK_FALSE(has_head);  // listed once, as the embedding
  nn::MambaLM untied({.vocab_size = 7, .d_model = 8, .n_layer = 1, .norm = "layernorm", .tie_embeddings = false});
  CHECK(untied.named_parameters().size() == lm.named_parameters().size() + 3);  // head, 2 layer-norm biases

  // Learn to copy the previous token: the loss must fall well below its start.
  tg::optim::Adam opt(lm.parameters(), {.lr = 1e-2});
  Tensor tok = tg::randint(0, 7, {4, 12});
  Tensor x = tok.narrow(1, 1, 11), target = tok.narrow(1, 0, 11);
  double first = 0, last = 0;
  for (int i = 0; i < 40; ++i) {
    Tensor loss = F::cross_entropy(lm.forward(x).reshape({-1, 7}), target.reshape({-1}));
    if (i == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  CHECK(last < 0.7 * first);

  CHECK_THROWS_WITH_AS(lm.layers->at<nn::MambaLayer>(0)->mixer->forward(tg::randn({2, 3, 5})),
                       doctest::Contains("Mamba: input must be [B, L, 8], got [2, 3, 5]"), tg::Error);
  CHECK_THROWS_WITH_AS(nn::MambaLM({.vocab_size = 7, .d_model = 8, .n_layer = 1, .norm = "batchnorm"}),
                       doctest::Contains("norm must be \"rmsnorm\" or \"layernorm\""), tg::Error);
  auto st = lm.initial_state(3);
  CHECK_THROWS_WITH_AS(lm.step(tg::randint(0, 7, {2}), st), doctest::Contains("Mamba.step: the state"), tg::Error);
}

}  // TEST_SUITE
