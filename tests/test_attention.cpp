// scaled_dot_product_attention: the fused kernel against its reference composition (outputs and gradients, causal,
// bool and additive masks, grouped-query heads, T != S, odd sizes, several key blocks, dropout), float64 gradcheck
// of the fused op, fully masked rows, argument errors, and that backward keeps O(T + S) per head, not T x S.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tapegrad.h"

using tg::Tensor;
namespace F = tg::nn::functional;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a.to(tg::kFloat64) - b.to(tg::kFloat64))).item<double>();
}

struct Sdpa {
  int64_t B, H, Hkv, T, S, D, Dv;
  bool causal = false;
  int mask = 0;  // 0 none, 1 bool [T, S], 2 additive [B, 1, T, S]
  double p = 0;
};

std::string name(const Sdpa& c) {
  return fmt::format("B{} H{} Hkv{} T{} S{} D{} Dv{} causal{} mask{} p{}", c.B, c.H, c.Hkv, c.T, c.S, c.D, c.Dv,
                     c.causal, c.mask, c.p);
}

Tensor make_mask(const Sdpa& c, tg::DType dt) {
  if (c.mask == 1) {
    Tensor m = tg::rand({c.T, c.S}) > 0.3;
    // keep every row non-empty (including under causality) so that the reference has no NaN rows
    return tg::logical_or(m, tg::eq(tg::arange(static_cast<double>(c.S)).reshape({1, c.S}), 0.0));
  }
  if (c.mask == 2) return tg::randn({c.B, 1, c.T, c.S}, dt);
  return {};
}

// Fused and reference outputs and gradients of (out * w).sum() agree.
void check_against_reference(const Sdpa& c, tg::DType dt, double tol) {
  INFO(name(c));
  tg::manual_seed(7);
  Tensor q = tg::randn({c.B, c.H, c.T, c.D}, dt).requires_grad_();
  Tensor k = tg::randn({c.B, c.Hkv, c.S, c.D}, dt).requires_grad_();
  Tensor v = tg::randn({c.B, c.Hkv, c.S, c.Dv}, dt).requires_grad_();
  Tensor mask = make_mask(c, dt);
  const uint64_t seed = 1234;
  Tensor a = F::scaled_dot_product_attention_seeded(q, k, v, mask, c.p, c.causal, std::nullopt, seed);
  Tensor w = tg::randn(a.sizes(), dt);
  (a * w).sum().backward();
  Tensor gq = q.grad(), gk = k.grad(), gv = v.grad();
  q.zero_grad(), k.zero_grad(), v.zero_grad();
  Tensor b = F::scaled_dot_product_attention_reference(q, k, v, mask, c.p, c.causal, std::nullopt, seed);
  (b * w).sum().backward();
  CHECK(max_abs_diff(a, b) < tol);
  CHECK(max_abs_diff(gq, q.grad()) < tol);
  CHECK(max_abs_diff(gk, k.grad()) < tol);
  CHECK(max_abs_diff(gv, v.grad()) < tol);
}

}  // namespace

TEST_CASE("attention: fused SDPA equals the reference composition, forward and backward") {
  const std::vector<Sdpa> cases = {
      {1, 1, 1, 1, 1, 1, 1},
      {2, 3, 3, 5, 7, 4, 3},
      {2, 2, 2, 6, 6, 5, 5, true},
      {1, 4, 2, 7, 9, 3, 4, false, 1},      // GQA, bool mask
      {2, 4, 1, 5, 5, 4, 2, true, 2},       // MQA, causal, additive mask
      {1, 2, 2, 9, 4, 3, 3, true},          // causal with T > S (top-left: every row sees key 0)
      {1, 2, 1, 70, 133, 8, 6, true, 1},    // several query and key blocks, partial last blocks
      {1, 2, 2, 66, 66, 5, 7, false, 0, 0.3},  // dropout, regenerated in backward
      {2, 2, 1, 9, 11, 4, 4, true, 2, 0.5},
  };
  for (const auto& c : cases) check_against_reference(c, tg::kFloat64, 1e-10);
  for (const auto& c : cases) check_against_reference(c, tg::kFloat32, 2e-4);
}

TEST_CASE("attention: fused SDPA passes float64 gradcheck") {
  tg::manual_seed(3);
  const std::vector<Sdpa> cases = {
      {1, 2, 2, 3, 4, 3, 2, false},
      {1, 2, 1, 4, 4, 2, 3, true, 2},
      {2, 2, 2, 3, 5, 2, 2, false, 1, 0.4},
  };
  for (const auto& c : cases) {
    INFO(name(c));
    auto d = tg::kFloat64;
    Tensor q = tg::randn({c.B, c.H, c.T, c.D}, d).requires_grad_();
    Tensor k = tg::randn({c.B, c.Hkv, c.S, c.D}, d).requires_grad_();
    Tensor v = tg::randn({c.B, c.Hkv, c.S, c.Dv}, d).requires_grad_();
    Tensor mask = make_mask(c, d);
    std::string report;
    bool ok = tg::gradcheck(
        [&](const std::vector<Tensor>& x) {
          return F::scaled_dot_product_attention_seeded(x[0], x[1], x[2], mask, c.p, c.causal, 0.7, 99);
        },
        {q, k, v}, {}, &report);
    CHECK_MESSAGE(ok, report);
  }
}

TEST_CASE("attention: strided and 3-d inputs, and the output's head-merging layout") {
  tg::manual_seed(5);
  const int64_t B = 2, T = 6, H = 3, D = 4;
  Tensor qkv = tg::randn({B, T, 3 * H * D}, tg::kFloat64).requires_grad_();
  auto parts = qkv.split(H * D, 2);
  auto heads = [&](const Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };
  Tensor o = F::scaled_dot_product_attention(heads(parts[0]), heads(parts[1]), heads(parts[2]), {}, 0.0, true);
  Tensor r = F::scaled_dot_product_attention_reference(heads(parts[0]), heads(parts[1]), heads(parts[2]), {}, 0.0, true);
  CHECK(max_abs_diff(o, r) < 1e-12);
  CHECK(o.transpose(1, 2).is_contiguous());
  Tensor x = tg::randn({2, 5, 3}, tg::kFloat64);
  CHECK(max_abs_diff(F::scaled_dot_product_attention(x, x, x), F::scaled_dot_product_attention_reference(x, x, x)) <
        1e-12);
  CHECK(F::scaled_dot_product_attention(x, x, x).sizes() == tg::Shape{2, 5, 3});
}

TEST_CASE("attention: a fully masked row gives zeros and no NaN gradient") {
  Tensor q = tg::randn({1, 1, 3, 2}, tg::kFloat64).requires_grad_();
  Tensor k = tg::randn({1, 1, 4, 2}, tg::kFloat64).requires_grad_();
  Tensor v = tg::randn({1, 1, 4, 2}, tg::kFloat64).requires_grad_();
  Tensor mask = tg::tensor(std::vector<bool>{true, true, false, false, false, false, false, false, false, true, true, true},
                           {3, 4});
  Tensor o = F::scaled_dot_product_attention(q, k, v, mask);
  CHECK(tg::sum(tg::abs(o.select(2, 1))).item<double>() == 0.0);
  o.sum().backward();
  CHECK(std::isfinite(tg::sum(q.grad()).item<double>()));
  CHECK(std::isfinite(tg::sum(k.grad()).item<double>()));
  CHECK(tg::sum(tg::abs(q.grad().select(2, 1))).item<double>() == 0.0);
}

TEST_CASE("attention: backward keeps O(T + S) per head at T = S = 1024, not T x S") {
  const int64_t T = 1024, D = 16, H = 2;
  Tensor q = tg::randn({1, H, T, D}).requires_grad_();
  Tensor o = F::scaled_dot_product_attention(q, q, q, {}, 0.0, true);
  const auto& node = *o.grad_fn();
  int64_t kept = 0;
  for (size_t i = 0; i < node.saved.size(); ++i) kept += node.saved_tensor(i).numel();
  // q, k, v, out (4 T D each per head) and the logsumexp (T per head); T * T per head would be 16x more.
  CHECK(kept == H * (4 * T * D + T));
  CHECK(kept < H * T * T / 4);
  o.sum().backward();
  CHECK(q.grad().sizes() == q.sizes());
}

TEST_CASE("attention: argument errors name the op and the shapes") {
  Tensor q = tg::randn({1, 3, 4, 2}), k = tg::randn({1, 2, 4, 2});
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, k, k), doctest::Contains("not a multiple"), tg::Error);
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, tg::randn({1, 3, 4, 3}), tg::randn({1, 3, 4, 3})),
                       doctest::Contains("scaled_dot_product_attention: shapes do not fit"), tg::Error);
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, q, q, tg::ones({5, 4}, tg::kBool)),
                       doctest::Contains("broadcast"), tg::Error);
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, q, q, tg::ones({4, 4}, tg::kInt64)),
                       doctest::Contains("attn_mask must be bool"), tg::Error);
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, q, q, {}, 1.0), doctest::Contains("dropout_p"), tg::Error);
  CHECK_THROWS_AS(F::scaled_dot_product_attention(q, q.to(tg::kFloat64), q), tg::Error);
}
