// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): softmax(q k^T) replaced by the kernel
// phi(q) phi(k)^T with phi(x) = elu(x) + 1, so causal attention is an RNN whose state is a d_k x d_v matrix:
//
//   S_t = S_{t-1} + phi(k_t)^T v_t,   z_t = z_{t-1} + phi(k_t),   y_t = phi(q_t) S_t / (phi(q_t) . z_t + eps)
//
// Two forms that agree (tests/test_nn_linear_attention.cpp): the recurrence, one step at a time (the reference and
// the streaming path), and the chunked form, which inside a chunk of L steps computes the causal product
// tril(phi(Q) phi(K)^T) V with GEMMs and passes (S, z) between chunks. See docs/linear_attention.md.
//
//   tg::nn::LinearAttention la(64, 4);          // d_model 64, 4 heads
//   Tensor y = la.forward(x);                   // x, y [B, T, 64]
//   auto [y_t, st] = la.step(x_t, st);          // streaming: x_t [B, 64], st carried between calls
#pragma once
#include <cstdint>
#include <memory>
#include <tuple>

#include "nn/layers.h"
#include "nn/module.h"

namespace tg::nn {

// The running sums of linear attention: S [B, H, Dk, Dv] and z [B, H, Dk]. Undefined members mean zeros.
struct LinearAttentionState {
  Tensor S, z;
};

namespace functional {

// phi(x) = elu(x) + 1 = x + 1 for x > 0, exp(x) otherwise: positive, so the normaliser never vanishes.
Tensor elu_feature_map(const Tensor& x);

// Causal linear attention of already-mapped features q, k [B, H, T, Dk] and values v [B, H, T, Dv] -> [B, H, T, Dv].
// The recurrent form: a loop of linear_attention_step.
Tensor linear_attention_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, double eps = 1e-6);
// The chunked parallel form: GEMMs inside each chunk of chunk_size steps, the state passed between chunks.
Tensor linear_attention_chunked(const Tensor& q, const Tensor& k, const Tensor& v, int64_t chunk_size = 64,
                                double eps = 1e-6);
// One step: q_t, k_t [B, H, Dk], v_t [B, H, Dv] -> (y_t [B, H, Dv], the updated state).
std::tuple<Tensor, LinearAttentionState> linear_attention_step(const Tensor& q_t, const Tensor& k_t, const Tensor& v_t,
                                                               const LinearAttentionState& state, double eps = 1e-6);

}  // namespace functional

// Multi-head linear attention as a sequence-mixing layer on [B, T, d_model]: q, k, v projections (no bias), the
// elu+1 feature map on q and k, the chunked causal form, and an output projection. d_model % n_heads == 0.
class LinearAttention : public UnaryModule {
 public:
  LinearAttention(int64_t d_model, int64_t n_heads, int64_t chunk_size = 64, double eps = 1e-6, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  // The same outputs through the recurrence (the reference for tests).
  Tensor forward_recurrent(const Tensor& x);
  // Streaming: one token x_t [B, d_model] -> (y_t [B, d_model], state); pass {} to start.
  std::tuple<Tensor, LinearAttentionState> step(const Tensor& x_t, const LinearAttentionState& state = {});
  std::string name() const override { return "LinearAttention"; }

  int64_t d_model, n_heads, chunk_size;
  double eps;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj;

 private:
  std::tuple<Tensor, Tensor, Tensor> project(const Tensor& x) const;  // mapped q, k and v, [B, H, T, D]
};

}  // namespace tg::nn
