// The linear-attention chapter (docs/linear_attention.md) as a program: linear attention's recurrence, chunked
// form and quadratic form agree; GLA's chunked form equals its recurrence and a streaming loop of steps; Aaren's
// prefix scan equals causal softmax attention with one constant query; and the tape sizes of the recurrent and
// chunked forms. Exits non-zero if any check fails.
#include <cstdio>

#include "tapegrad.h"

namespace nn = tg::nn;
namespace F = tg::nn::functional;
using tg::Tensor;

static int failures = 0;
static void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  failures += !ok;
}

static double max_abs_diff(const Tensor& a, const Tensor& b) { return tg::max(tg::abs(a - b)).item<double>(); }

int main() {
  tg::manual_seed(0);
  const int64_t B = 2, H = 2, T = 64, D = 8;

  // 1. Linear attention: the RNN, the chunked GEMM form and the masked quadratic form are one function.
  Tensor q = F::elu_feature_map(tg::randn({B, H, T, D}, tg::kFloat64));
  Tensor k = F::elu_feature_map(tg::randn({B, H, T, D}, tg::kFloat64));
  Tensor v = tg::randn({B, H, T, D}, tg::kFloat64);
  Tensor rec = F::linear_attention_recurrent(q, k, v), chunked = F::linear_attention_chunked(q, k, v, 16);
  Tensor A = tg::tril(tg::matmul(q, k.transpose(-1, -2)));
  Tensor quad = tg::matmul(A, v) / (tg::sum(A, {-1}, true) + 1e-6);
  std::printf("linear attention: |rec - chunked| %.1e, |rec - quadratic| %.1e\n", max_abs_diff(rec, chunked),
              max_abs_diff(rec, quad));
  check(max_abs_diff(rec, chunked) < 1e-12 && max_abs_diff(rec, quad) < 1e-12, "three forms of linear attention agree");

  // 2. The tape: the recurrence records a few nodes per step, the chunked form a few per chunk.
  Tensor ql = q.clone().requires_grad_();
  size_t n0 = tg::autograd::tape_size();
  Tensor r1 = F::linear_attention_recurrent(ql, k, v);
  size_t n1 = tg::autograd::tape_size();
  Tensor r2 = F::linear_attention_chunked(ql, k, v, 16);
  size_t n2 = tg::autograd::tape_size();
  std::printf("tape nodes: recurrent %zu, chunked (L = 16) %zu\n", n1 - n0, n2 - n1);
  check(n2 - n1 < (n1 - n0) / 4, "the chunked form records far fewer nodes");

  // 3. GLA: chunked training form, recurrence and streaming steps of the layer give the same outputs.
  nn::GatedLinearAttention gla({.d_model = 16, .n_heads = 2, .chunk_size = 8});
  gla.to(tg::kFloat64);
  Tensor x = tg::randn({B, 20, 16}, tg::kFloat64);
  Tensor y = gla.forward(x);
  Tensor S;
  double stream = 0;
  for (int64_t t = 0; t < 20; ++t) {
    auto [y_t, next] = gla.step(x.select(1, t), S);
    S = next;
    stream = std::max(stream, max_abs_diff(y_t, y.select(1, t)));
  }
  std::printf("GLA: |chunked - recurrent| %.1e, |chunked - streaming| %.1e\n",
              max_abs_diff(y, gla.forward_recurrent(x)), stream);
  check(max_abs_diff(y, gla.forward_recurrent(x)) < 1e-12 && stream < 1e-12, "GLA's forms agree");

  // 4. Aaren: the prefix scan over (m, u, w) is causal softmax attention with a constant query.
  Tensor s = tg::randn({B, H, T}, tg::kFloat64) * 4.0;
  Tensor scan = F::aaren_scan(s, v);
  Tensor scores = s.unsqueeze(2).expand({-1, -1, T, -1});
  Tensor mask = tg::gt(tg::triu(tg::ones({T, T}, tg::kFloat64), 1), 0.5);
  Tensor attn = tg::matmul(tg::softmax(tg::masked_fill(scores, mask, -1e300), -1), v);
  std::printf("Aaren: |scan - softmax attention| %.1e, |scan - sequential| %.1e\n", max_abs_diff(scan, attn),
              max_abs_diff(scan, F::aaren_sequential(s, v)));
  check(max_abs_diff(scan, attn) < 1e-12, "Aaren's scan is softmax attention");
  return failures ? 1 : 0;
}
