// Aaren, "Attention as an RNN" (Feeney et al. 2024, arXiv 2405.13956): softmax attention of one query over a
// growing prefix is an RNN with state (m, c, a) (running max score, normaliser, weighted value sum):
//
//   m_t = max(m_{t-1}, s_t),  c_t = c_{t-1} e^{m_{t-1} - m_t} + e^{s_t - m_t},  a_t = a_{t-1} e^{m_{t-1} - m_t} + v_t e^{s_t - m_t}
//   o_t = a_t / c_t = sum_{i<=t} softmax(s_1..s_t)_i v_i
//
// and all T outputs come from a parallel prefix scan with leaves (s_i, 1, v_i) and the associative operator
// (m_A, u_A, w_A) + (m_B, u_B, w_B) = (m, u_A e^{m_A-m} + u_B e^{m_B-m}, w_A e^{m_A-m} + w_B e^{m_B-m}), m = max.
// The Aaren layer uses a learned, input-independent query per head, so streaming needs O(1) state per token.
// tests/test_nn_aaren.cpp checks the scan against the sequential form and causal softmax attention. See
// docs/linear_attention.md.
//
//   tg::nn::Aaren aaren(64, 4);                 // d_model 64, 4 heads
//   Tensor y = aaren.forward(x);                // x, y [B, T, 64]
//   auto [y_t, st] = aaren.step(x_t, st);       // streaming: x_t [B, 64]
#pragma once
#include <cstdint>
#include <memory>
#include <tuple>

#include "nn/layers.h"
#include "nn/module.h"

namespace tg::nn {

// The many-to-one RNN state: m, c [B, H] and a [B, H, D]. Undefined members: nothing seen yet.
struct AarenState {
  Tensor m, c, a;
};

namespace functional {

// Scores s [B, H, T] and values v [B, H, T, D] -> o [B, H, T, D], o_t the softmax(s_1..t)-weighted mean of v_1..t.
// The parallel form: a Hillis-Steele prefix scan of the (m, u, w) operator, ceil(log2 T) combine steps.
Tensor aaren_scan(const Tensor& s, const Tensor& v);
// The sequential form: a loop of aaren_step.
Tensor aaren_sequential(const Tensor& s, const Tensor& v);
// One step: s_t [B, H], v_t [B, H, D] -> (o_t [B, H, D], the updated state).
std::tuple<Tensor, AarenState> aaren_step(const Tensor& s_t, const Tensor& v_t, const AarenState& state);

}  // namespace functional

// Multi-head Aaren as a sequence-mixing layer on [B, T, d_model]: a learned query [H, d_model / H] per head,
// k and v projections (no bias), scores s_t = q . k_t / sqrt(d_head), the prefix scan, and an output projection.
class Aaren : public UnaryModule {
 public:
  Aaren(int64_t d_model, int64_t n_heads, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  // The same outputs through the sequential RNN (the reference for tests).
  Tensor forward_sequential(const Tensor& x);
  std::tuple<Tensor, AarenState> step(const Tensor& x_t, const AarenState& state = {});
  std::string name() const override { return "Aaren"; }

  int64_t d_model, n_heads, head_dim;
  Tensor query;  // [H, head_dim], N(0, 1) as a learned token
  std::shared_ptr<Linear> k_proj, v_proj, o_proj;

 private:
  std::tuple<Tensor, Tensor> scores_values(const Tensor& x) const;  // s [B, H, T], v [B, H, T, D]
};

}  // namespace tg::nn
