// Gated Linear Attention (Yang et al. 2023; layout of fla-org/flash-linear-attention fla/layers/gla.py): linear
// attention whose d_k x d_v state decays by a data-dependent gate per key dimension,
//
//   S_t = Diag(alpha_t) S_{t-1} + k_t^T v_t,   o_t = (q_t * scale) S_t,   scale = d_k^{-1/2}
//
// with log alpha_t given per step and key dim. Two forms that agree (tests/test_nn_gla.cpp): the recurrence (the
// reference, and the streaming path) and the chunked form, which inside a chunk of L steps with cumulative log
// gates b_t = sum_{s<=t} log alpha_s computes tril((q exp(b)) (k exp(-b))^T) V with GEMMs and carries S between
// chunks. exp(-b) grows within a chunk: the chunked form is exact while a chunk's summed log gate stays above about
// -80 in float32 (-700 in float64), which the layer's logsigmoid / 16 gate keeps for chunks of 16 unless a gate
// logit falls below about -80. See docs/linear_attention.md.
//
//   tg::nn::GatedLinearAttention gla({.d_model = 64, .n_heads = 4});
//   Tensor y = gla.forward(x);                  // x, y [B, T, 64]
//   auto [y_t, S] = gla.step(x_t, S);           // streaming: x_t [B, 64], S [B, H, Dk, Dv] carried
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <tuple>

#include "nn/layers.h"
#include "nn/module.h"

namespace tg::nn {

namespace functional {

// q, k, log_alpha [B, H, T, Dk] (log_alpha <= 0), v [B, H, T, Dv], initial_state [B, H, Dk, Dv] or undefined
// (zeros); scale defaults to Dk^{-1/2}. Both return (o [B, H, T, Dv], the final state S_T).
std::tuple<Tensor, Tensor> gla_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_alpha,
                                         std::optional<double> scale = std::nullopt, const Tensor& initial_state = {});
std::tuple<Tensor, Tensor> gla_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_alpha,
                                       int64_t chunk_size = 16, std::optional<double> scale = std::nullopt,
                                       const Tensor& initial_state = {});
// One step: q_t, k_t, log_alpha_t [B, H, Dk], v_t [B, H, Dv], S [B, H, Dk, Dv] or undefined -> (o_t, S_t).
std::tuple<Tensor, Tensor> gla_step(const Tensor& q_t, const Tensor& k_t, const Tensor& v_t, const Tensor& log_alpha_t,
                                    const Tensor& S, double scale);

}  // namespace functional

struct GLAOptions {
  int64_t d_model = 0;
  int64_t n_heads = 4;
  double expand_k = 0.5;               // key dim d_k = expand_k * d_model (over all heads)
  double expand_v = 1.0;               // value dim d_v = expand_v * d_model
  int64_t gate_low_rank_dim = 16;      // the gate projection d_model -> r -> d_k
  double gate_logit_normalizer = 16;   // log alpha = logsigmoid(gate logits) / normalizer
  double norm_eps = 1e-5;              // the per-head RMSNorm of the output
  bool use_output_gate = true;         // o = RMSNorm(o) * swish(x W_g)
  int64_t chunk_size = 16;
};

// GLA as a sequence-mixing layer on [B, T, d_model], as fla's GatedLinearAttention (without its optional short
// convolution): q_proj, k_proj [d_k, d_model], v_proj, g_proj [d_v, d_model] (no bias), the low-rank gate
// gk_proj = Linear(d_model, r, no bias) then Linear(r, d_k), the per-head RMSNorm g_norm [d_v / H] and o_proj.
class GatedLinearAttention : public UnaryModule {
 public:
  explicit GatedLinearAttention(const GLAOptions& options, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  // The same outputs through the recurrence (the reference for tests).
  Tensor forward_recurrent(const Tensor& x);
  // Streaming: x_t [B, d_model], S [B, H, Dk/H, Dv/H] or {} -> (y_t [B, d_model], S).
  std::tuple<Tensor, Tensor> step(const Tensor& x_t, const Tensor& S = {});
  std::string name() const override { return "GatedLinearAttention"; }

  GLAOptions options;
  int64_t key_dim, value_dim, head_k_dim, head_v_dim;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, g_proj, o_proj;
  std::shared_ptr<Sequential> gk_proj;
  std::shared_ptr<RMSNorm> g_norm;

 private:
  struct Projected {
    Tensor q, k, v, log_alpha;  // [B, H, T, D]
  };
  Projected project(const Tensor& x) const;
  Tensor output(const Tensor& o, const Tensor& x) const;  // o [B, H, T, Dv/H], x [B, T, d_model] -> [B, T, d_model]
};

}  // namespace tg::nn
