// Aaren (attention as an RNN): the prefix scan equals the sequential RNN and causal softmax attention with a
// constant query, stays exact for large scores, gradchecks in float64, and the layer's scan forward, sequential
// forward and streaming steps agree.
#include <doctest/doctest.h>

#include <limits>
#include <string>
#include <vector>

#include "nn/aaren.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a - b)).item<double>();
}

// softmax(s masked causal) V: every query row t attends to keys 1..t with the same scores s.
Tensor causal_softmax_attention(const Tensor& s, const Tensor& v) {
  const int64_t T = s.size(2);
  Tensor scores = s.unsqueeze(2).expand({-1, -1, T, -1});  // [B, H, T, T], row t: s_1..s_T
  Tensor mask = tg::gt(tg::triu(tg::ones({T, T}, tg::kFloat64), 1), 0.5);
  return tg::matmul(tg::softmax(tg::masked_fill(scores, mask, -1e300), -1), v);
}

}  // namespace

TEST_SUITE("aaren") {

TEST_CASE("aaren_scan: equals the sequential RNN and causal softmax attention, for any length") {
  tg::manual_seed(100);
  for (int64_t T : {1, 2, 5, 8, 13}) {
    INFO("T ", T);
    Tensor s = tg::randn({2, 3, T}, tg::kFloat64) * 3.0, v = tg::randn({2, 3, T, 4}, tg::kFloat64);
    Tensor scan = F::aaren_scan(s, v);
    CHECK(max_abs_diff(scan, causal_softmax_attention(s, v)) < 1e-12);
    CHECK(max_abs_diff(scan, F::aaren_sequential(s, v)) < 1e-12);
    // The gradients of the two forms agree too.
    Tensor sl = s.clone().requires_grad_(), vl = v.clone().requires_grad_();
    Tensor w = tg::randn(scan.sizes(), tg::kFloat64);
    auto g1 = tg::autograd::grad({tg::sum(F::aaren_scan(sl, vl) * w)}, {sl, vl});
    auto g2 = tg::autograd::grad({tg::sum(causal_softmax_attention(sl, vl) * w)}, {sl, vl});
    CHECK(max_abs_diff(g1[0], g2[0]) < 1e-11);
    CHECK(max_abs_diff(g1[1], g2[1]) < 1e-11);
  }
  // Scores far beyond exp's range: the running maximum keeps every exponent <= 0.
  Tensor s = tg::randn({1, 1, 6}, tg::kFloat64) * 1000.0, v = tg::randn({1, 1, 6, 2}, tg::kFloat64);
  Tensor f = F::aaren_scan(s.to(tg::kFloat32), v.to(tg::kFloat32));
  CHECK(max_abs_diff(f.to(tg::kFloat64), causal_softmax_attention(s, v)) < 1e-5);
  CHECK(F::aaren_scan(tg::zeros({1, 2, 0}), tg::zeros({1, 2, 0, 3})).sizes() == tg::Shape{1, 2, 0, 3});
}

TEST_CASE("aaren: gradcheck of the scan and the sequential form") {
  tg::manual_seed(101);
  Tensor s = tg::randn({1, 2, 6}, tg::kFloat64).requires_grad_(), v = tg::randn({1, 2, 6, 3}, tg::kFloat64).requires_grad_();
  for (bool scan : {true, false}) {
    INFO("scan form ", scan);
    std::string report;
    CHECK_MESSAGE(tg::gradcheck([scan](const std::vector<Tensor>& a) {
      return scan ? F::aaren_scan(a[0], a[1]) : F::aaren_sequential(a[0], a[1]);
    }, {s, v}, {}, &report), report);
  }
}

TEST_CASE("Aaren layer: scan forward, sequential forward and streaming steps agree, gradcheck, errors") {
  tg::manual_seed(102);
  nn::Aaren a(8, 2);
  a.to(tg::kFloat64);
  CHECK(a.query.sizes() == tg::Shape{2, 4});
  Tensor x = tg::randn({2, 9, 8}, tg::kFloat64);
  Tensor y = a.forward(x);
  CHECK(y.sizes() == x.sizes());
  CHECK(max_abs_diff(y, a.forward_sequential(x)) < 1e-12);
  nn::AarenState st;
  for (int64_t t = 0; t < 9; ++t) {
    auto [y_t, next] = a.step(x.select(1, t), st);
    st = next;
    CHECK(max_abs_diff(y_t, y.select(1, t)) < 1e-12);
  }
  nn::Aaren small(4, 2);
  small.to(tg::kFloat64);
  std::vector<Tensor> in{tg::randn({1, 5, 4}, tg::kFloat64).requires_grad_()};
  for (auto& p : small.parameters()) in.push_back(p);
  std::string report;
  CHECK_MESSAGE(tg::gradcheck([&](const std::vector<Tensor>& v) { return small.forward(v[0]); }, in, {}, &report),
                report);
  CHECK_THROWS_AS(nn::Aaren(6, 4), tg::Error);
  CHECK_THROWS_AS(a.forward(tg::zeros({2, 3, 6}, tg::kFloat64)), tg::Error);
  CHECK_THROWS_AS(F::aaren_scan(tg::zeros({1, 2, 3}), tg::zeros({1, 2, 4, 3})), tg::Error);
  CHECK_THROWS_AS(F::aaren_scan(tg::zeros({1, 2, 3}), tg::zeros({1, 2, 3, 2}, tg::kFloat64)), tg::Error);
}

}  // TEST_SUITE
