// tg::nn::MoE: a sparse mixture-of-experts feed-forward layer (Shazeer et al. 2017; Switch Transformer, Fedus et
// al. 2021; GShard top-2; ST-MoE z-loss; EvoMoE's dense-to-sparse gate). A router (Linear d_model -> n_experts)
// scores every token, each token goes to its top-k experts (at most `capacity` tokens per expert, the rest are
// dropped and get a zero output, so the surrounding residual carries them), and the output is the gate-weighted sum
// of the chosen experts' MLP outputs. Dispatch gathers each expert's tokens into one matrix: one GEMM chain per
// expert, one scatter-add for all of them. See docs/moe.md.
//
//   tg::nn::MoE moe({.d_model = 64, .d_hidden = 256, .n_experts = 8, .top_k = 2});
//   Tensor y = moe.forward(x);                                   // x, y [B, T, 64]
//   Tensor loss = ce + 1e-2 * moe.aux_loss() + 1e-3 * moe.z_loss();
//   moe.stats().tokens_per_expert, moe.stats().dropped_fraction  // for logging
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/layers.h"
#include "nn/module.h"

namespace tg::nn {

struct MoEOptions {
  int64_t d_model = 0;
  int64_t d_hidden = 0;   // each expert: Linear(d_model, d_hidden), activation, Linear(d_hidden, d_model)
  int64_t n_experts = 0;
  int64_t top_k = 1;      // 1: Switch (gate = p_i, not renormalised); 2 or more: GShard (the k gates renormalised)
  // capacity = ceil(capacity_factor * k * tokens / n_experts) slots per expert and forward; <= 0 means unlimited.
  // Switch trains with 1.0-1.25 and evaluates with 2.0; eval_capacity_factor is used in eval() mode.
  double capacity_factor = 1.25;
  double eval_capacity_factor = 2.0;
  std::string activation = "gelu";  // "gelu", "relu" or "silu"
  bool expert_bias = true;
  // Dense-to-sparse (EvoMoE DTS) gate: used in training mode while the temperature set by set_gate_temperature()
  // is > 0. Gates are softmax((logits + Gumbel noise) / tau) and a token goes to every expert whose gate exceeds
  // dts_threshold (at least its top_k). eval() and tau <= 0 use plain top-k softmax gating.
  double dts_threshold = 1e-3;
  bool dts_gumbel_noise = true;
};

// What the last forward did with its tokens, for logging.
struct RouterStats {
  int64_t tokens = 0;                          // tokens routed (B * T)
  int64_t capacity = 0;                        // slots per expert (tokens when unlimited)
  std::vector<int64_t> assigned_per_expert;    // token-expert assignments the gates asked for
  std::vector<int64_t> tokens_per_expert;      // assignments kept (<= capacity)
  double dropped_fraction = 0;                 // assignments dropped for capacity / all assignments
  double mean_experts_per_token = 0;           // k, or the DTS gate's adaptive k
};

namespace functional {

// The Switch Transformer load-balancing loss N * sum_i f_i * P_i for router probabilities probs [N_tokens, E]:
// f_i the fraction of the assignments (token-expert pairs chosen by the gate, before capacity) that went to expert
// i, P_i = mean over tokens of probs[:, i]. Differentiable through P only, as in the paper; 1 at perfect balance.
// assignments [N_tokens, k] int64 expert indices (negative entries are ignored).
Tensor load_balancing_loss(const Tensor& probs, const Tensor& assignments);
// The ST-MoE router z-loss mean over tokens of logsumexp(logits)^2, logits [N_tokens, E].
Tensor router_z_loss(const Tensor& logits);
// Annealed temperature for the dense-to-sparse gate: geometric from tau_start at step 0 to tau_end at
// total_steps (and tau_end after).
double dts_temperature(int64_t step, int64_t total_steps, double tau_start = 2.0, double tau_end = 0.3);

}  // namespace functional

class MoE : public UnaryModule {
 public:
  explicit MoE(const MoEOptions& options, TensorOptions opt = {});
  // x [..., d_model] -> y of the same shape. Also sets aux_loss(), z_loss() and stats().
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "MoE"; }

  // The last forward's load-balancing loss N * sum f_i P_i and z-loss (unscaled: multiply by your coefficients,
  // e.g. 1e-2 and 1e-3, and add them to the training loss). Undefined before the first forward.
  const Tensor& aux_loss() const { return aux_loss_; }
  const Tensor& z_loss() const { return z_loss_; }
  const RouterStats& stats() const { return stats_; }
  // The last forward's routing: expert index per token and slot, [N_tokens, k_max], -1 where a slot is empty or
  // the assignment was dropped for capacity; and the matching gate weights (0 there).
  const Tensor& routes() const { return routes_; }
  const Tensor& gates() const { return gates_; }

  // The DTS gate's temperature (<= 0 switches it off); see MoEOptions and functional::dts_temperature.
  void set_gate_temperature(double tau) { gate_temperature_ = tau; }
  double gate_temperature() const { return gate_temperature_; }

  MoEOptions options;
  std::shared_ptr<Linear> router;        // [n_experts, d_model], no bias
  std::shared_ptr<ModuleList> experts;   // n_experts Sequential(Linear, activation, Linear)

 private:
  Tensor aux_loss_, z_loss_, routes_, gates_;
  RouterStats stats_;
  double gate_temperature_ = 0;
};

}  // namespace tg::nn
