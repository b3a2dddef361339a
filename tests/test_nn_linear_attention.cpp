// Linear attention and Gated Linear Attention: the recurrent and chunked forms agree (outputs, final states and
// gradients, for chunk sizes that do and do not divide T), linear attention equals its quadratic masked form,
// float64 gradcheck of every form and of the layers, the layers' chunked forward, recurrent forward and streaming
// steps agree, and bad shapes are tg::Errors. PyTorch parity of the functional forms is in
// tests/test_nn_linear_attention_parity.cpp.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "nn/gla.h"
#include "nn/linear_attention.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a - b)).item<double>();
}

Tensor leaf(const tg::Shape& s) { return tg::randn(s, tg::kFloat64).requires_grad_(); }

// Gradients of sum(f() * w) with respect to xs, w a fixed weighting of the output.
std::vector<Tensor> grads_of(const Tensor& out, const Tensor& w, const std::vector<Tensor>& xs) {
  return tg::autograd::grad({tg::sum(out * w)}, xs);
}

void check_grad(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& xs) {
  std::string report;
  CHECK_MESSAGE(tg::gradcheck(fn, xs, {}, &report), report);
}

// The layer's parameters, for gradcheck of a whole module.
std::vector<Tensor> with_params(Tensor x, nn::Module& m) {
  std::vector<Tensor> v{x};
  for (auto& p : m.parameters()) v.push_back(p);
  return v;
}

}  // namespace

TEST_SUITE("linear_attention") {

TEST_CASE("linear attention: recurrent, chunked and quadratic forms agree, with gradients") {
  tg::manual_seed(90);
  Tensor q = F::elu_feature_map(tg::randn({2, 3, 7, 4}, tg::kFloat64)).requires_grad_();
  Tensor k = F::elu_feature_map(tg::randn({2, 3, 7, 4}, tg::kFloat64)).requires_grad_();
  Tensor v = leaf({2, 3, 7, 5});
  Tensor rec = F::linear_attention_recurrent(q, k, v);
  // phi(Q) phi(K)^T masked causal, times V, each row divided by its sum.
  Tensor A = tg::tril(tg::matmul(q, k.transpose(-1, -2)));
  Tensor quad = tg::matmul(A, v) / (tg::sum(A, {-1}, true) + 1e-6);
  CHECK(max_abs_diff(rec, quad) < 1e-12);
  Tensor w = tg::randn(rec.sizes(), tg::kFloat64);
  auto g_rec = grads_of(rec, w, {q, k, v});
  for (int64_t chunk : {1, 3, 4, 7, 64}) {
    INFO("chunk ", chunk);
    Tensor ch = F::linear_attention_chunked(q, k, v, chunk);
    CHECK(max_abs_diff(ch, rec) < 1e-12);
    auto g = grads_of(ch, w, {q, k, v});
    for (size_t i = 0; i < g.size(); ++i) CHECK(max_abs_diff(g[i], g_rec[i]) < 1e-11);
  }
  CHECK(F::linear_attention_chunked(q.narrow(2, 0, 0), k.narrow(2, 0, 0), v.narrow(2, 0, 0)).sizes() ==
        tg::Shape{2, 3, 0, 5});
}

TEST_CASE("linear attention: elu+1 feature map, gradcheck of both forms") {
  tg::manual_seed(91);
  Tensor x = tg::tensor(std::vector<double>{-2.0, -0.5, 0.5, 3.0});
  CHECK(max_abs_diff(F::elu_feature_map(x), tg::tensor(std::vector<double>{std::exp(-2.0), std::exp(-0.5), 1.5, 4.0})) <
        1e-15);
  Tensor q = leaf({1, 2, 5, 3}), k = leaf({1, 2, 5, 3}), v = leaf({1, 2, 5, 2});
  check_grad([](const std::vector<Tensor>& a) {
    return F::linear_attention_chunked(F::elu_feature_map(a[0]), F::elu_feature_map(a[1]), a[2], 2);
  }, {q, k, v});
  check_grad([](const std::vector<Tensor>& a) {
    return F::linear_attention_recurrent(F::elu_feature_map(a[0]), F::elu_feature_map(a[1]), a[2]);
  }, {q, k, v});
}

TEST_CASE("LinearAttention layer: chunked forward, recurrent forward and streaming steps agree, gradcheck") {
  tg::manual_seed(92);
  nn::LinearAttention la(8, 2, 3);
  la.to(tg::kFloat64);
  Tensor x = tg::randn({2, 7, 8}, tg::kFloat64);
  Tensor y = la.forward(x);
  CHECK(y.sizes() == x.sizes());
  CHECK(max_abs_diff(y, la.forward_recurrent(x)) < 1e-12);
  nn::LinearAttentionState st;
  for (int64_t t = 0; t < 7; ++t) {
    auto [y_t, next] = la.step(x.select(1, t), st);
    st = next;
    CHECK(max_abs_diff(y_t, y.select(1, t)) < 1e-12);
  }
  nn::LinearAttention small(4, 2, 2);
  small.to(tg::kFloat64);
  check_grad([&](const std::vector<Tensor>& a) { return small.forward(a[0]); },
             with_params(leaf({1, 5, 4}), small));
  CHECK_THROWS_AS(nn::LinearAttention(6, 4), tg::Error);
  CHECK_THROWS_AS(la.forward(tg::zeros({2, 7, 6}, tg::kFloat64)), tg::Error);
  CHECK_THROWS_AS(la.step(tg::zeros({2, 1, 8}, tg::kFloat64)), tg::Error);
  CHECK_THROWS_AS(F::linear_attention_chunked(tg::zeros({1, 2, 3, 4}), tg::zeros({1, 2, 3, 5}), tg::zeros({1, 2, 3, 4})),
                  tg::Error);
  CHECK_THROWS_AS(F::linear_attention_chunked(tg::zeros({2, 3, 4}), tg::zeros({2, 3, 4}), tg::zeros({2, 3, 4})),
                  tg::Error);
}

TEST_CASE("GLA: recurrent and chunked forms agree (outputs, final state, gradients), with an initial state") {
  tg::manual_seed(93);
  Tensor q = leaf({2, 2, 9, 4}), k = leaf({2, 2, 9, 4}), v = leaf({2, 2, 9, 3});
  Tensor la = (-tg::softplus(tg::randn({2, 2, 9, 4}, tg::kFloat64)) / 4.0).requires_grad_();
  Tensor S0 = leaf({2, 2, 4, 3});
  for (bool with_s0 : {false, true}) {
    INFO("initial state ", with_s0);
    Tensor s0 = with_s0 ? S0 : Tensor();
    auto [o_rec, S_rec] = F::gla_recurrent(q, k, v, la, std::nullopt, s0);
    Tensor w = tg::randn(o_rec.sizes(), tg::kFloat64), wS = tg::randn(S_rec.sizes(), tg::kFloat64);
    std::vector<Tensor> xs{q, k, v, la};
    if (with_s0) xs.push_back(S0);
    auto g_rec = tg::autograd::grad({tg::sum(o_rec * w) + tg::sum(S_rec * wS)}, xs);
    for (int64_t chunk : {1, 2, 4, 9, 16}) {
      INFO("chunk ", chunk);
      auto [o, S] = F::gla_chunked(q, k, v, la, chunk, std::nullopt, s0);
      CHECK(max_abs_diff(o, o_rec) < 1e-12);
      CHECK(max_abs_diff(S, S_rec) < 1e-12);
      auto g = tg::autograd::grad({tg::sum(o * w) + tg::sum(S * wS)}, xs);
      for (size_t i = 0; i < g.size(); ++i) CHECK(max_abs_diff(g[i], g_rec[i]) < 1e-11);
    }
  }
  // Float32 with the layer's gate (logsigmoid / 16) and strongly negative logits, chunks of 16: still the recurrence.
  {
    Tensor q32 = tg::randn({1, 2, 40, 8}), k32 = tg::randn({1, 2, 40, 8}), v32 = tg::randn({1, 2, 40, 4});
    Tensor g32 = -tg::softplus(-(tg::randn({1, 2, 40, 8}) * 4.0 - 6.0)) / 16.0;
    auto [oc, Sc] = F::gla_chunked(q32, k32, v32, g32, 16);
    auto [orr, Sr] = F::gla_recurrent(q32, k32, v32, g32);
    CHECK(max_abs_diff(oc, orr) < 1e-4 * (1.0 + tg::max(tg::abs(orr)).item<double>()));
    CHECK(max_abs_diff(Sc, Sr) < 1e-4 * (1.0 + tg::max(tg::abs(Sr)).item<double>()));
  }
  // With no decay (alpha = 1) and scale 1 GLA is unnormalised linear attention: tril(Q K^T) V.
  Tensor zero = tg::zeros(q.sizes(), tg::kFloat64);
  auto [o1, S1] = F::gla_chunked(q, k, v, zero, 4, 1.0);
  CHECK(max_abs_diff(o1, tg::matmul(tg::tril(tg::matmul(q, k.transpose(-1, -2))), v)) < 1e-12);
}

TEST_CASE("GLA: gradcheck of the recurrent and chunked forms") {
  tg::manual_seed(94);
  Tensor q = leaf({1, 2, 5, 3}), k = leaf({1, 2, 5, 3}), v = leaf({1, 2, 5, 2}), g = leaf({1, 2, 5, 3});
  Tensor S0 = leaf({1, 2, 3, 2});
  auto both = [](const std::tuple<Tensor, Tensor>& r) {
    return tg::cat({std::get<0>(r).reshape({-1}), std::get<1>(r).reshape({-1})});
  };
  // log alpha = logsigmoid(g): the gate parametrised as the layer does, so the check stays in the valid range.
  check_grad([&](const std::vector<Tensor>& a) {
    return both(F::gla_chunked(a[0], a[1], a[2], -tg::softplus(-a[3]), 2, std::nullopt, a[4]));
  }, {q, k, v, g, S0});
  check_grad([&](const std::vector<Tensor>& a) {
    return both(F::gla_recurrent(a[0], a[1], a[2], -tg::softplus(-a[3]), 0.7, a[4]));
  }, {q, k, v, g, S0});
}

TEST_CASE("GatedLinearAttention layer: chunked, recurrent and streaming agree, gradcheck, options") {
  tg::manual_seed(95);
  nn::GatedLinearAttention gla({.d_model = 8, .n_heads = 2, .gate_low_rank_dim = 3, .chunk_size = 3});
  gla.to(tg::kFloat64);
  CHECK(gla.key_dim == 4);
  CHECK(gla.value_dim == 8);
  CHECK(gla.gk_proj->parameters().size() == 3);  // low-rank W1 [3, 8], then W2 [4, 3] with bias
  Tensor x = tg::randn({2, 7, 8}, tg::kFloat64);
  Tensor y = gla.forward(x);
  CHECK(y.sizes() == x.sizes());
  CHECK(max_abs_diff(y, gla.forward_recurrent(x)) < 1e-12);
  Tensor S;
  for (int64_t t = 0; t < 7; ++t) {
    auto [y_t, next] = gla.step(x.select(1, t), S);
    S = next;
    CHECK(max_abs_diff(y_t, y.select(1, t)) < 1e-12);
  }
  CHECK(S.sizes() == tg::Shape{2, 2, 2, 4});
  nn::GatedLinearAttention small({.d_model = 4, .n_heads = 2, .gate_low_rank_dim = 2, .chunk_size = 2});
  small.to(tg::kFloat64);
  check_grad([&](const std::vector<Tensor>& a) { return small.forward(a[0]); }, with_params(leaf({1, 5, 4}), small));
  nn::GatedLinearAttention nogate({.d_model = 4, .n_heads = 1, .use_output_gate = false});
  CHECK(nogate.g_proj == nullptr);
  CHECK(nogate.forward(tg::randn({1, 3, 4})).sizes() == tg::Shape{1, 3, 4});
  CHECK_THROWS_AS(nn::GatedLinearAttention({.d_model = 6, .n_heads = 4}), tg::Error);
  CHECK_THROWS_AS(gla.forward(tg::zeros({2, 7, 4}, tg::kFloat64)), tg::Error);
  CHECK_THROWS_AS(F::gla_chunked(tg::zeros({1, 1, 3, 2}), tg::zeros({1, 1, 3, 2}), tg::zeros({1, 1, 3, 2}),
                                 tg::zeros({1, 1, 3, 3})),
                  tg::Error);
  CHECK_THROWS_AS(F::gla_recurrent(tg::zeros({1, 1, 3, 2}), tg::zeros({1, 1, 3, 2}), tg::zeros({1, 1, 3, 2}),
                                   tg::zeros({1, 1, 3, 2}), std::nullopt, tg::zeros({1, 1, 2, 3})),
                  tg::Error);
}

}  // TEST_SUITE
