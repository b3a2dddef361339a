// tg::optim::SPAM: Spike-Aware Adam with Momentum Reset (Huang et al., ICLR 2025, arXiv 2501.06842), as the
// official optimizer (TianjinYellow/SPAM-Optimizer, galore_torch/SPAM.py) computes it. docs/optimizers.md
// explains the rules; tests/make_fixtures.py holds a PyTorch transcription the tests compare against.
#pragma once
#include "optim/optimizer.h"

namespace tg::optim {

struct SPAMOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-6;              // added to sqrt(v), outside the bias correction
  double weight_decay = 0;        // decoupled: p -= lr * weight_decay * p, not scaled by the warm-up
  bool correct_bias = true;       // step size lr * sqrt(1 - beta2^t) / (1 - beta1^t)
  int64_t warmup_steps = 150;     // N: cosine warm-up of the update over the N steps after each reset
  double threshold = 5000;        // theta: spike if g^2 > theta * v; 0 turns clipping off
  int64_t delta_t = 500;          // DeltaT: both moments are zeroed at 1-based steps DeltaT, 2 DeltaT, ...; 0: never
  int64_t grad_accu_steps = 20;   // no clipping in the first steps and in this many steps from each reset
  bool fused = true;              // false: the composed-op reference path
};

// One step, with k = total_step + 1 (the 1-based global step) and t = the parameter's own step count:
//   s = warmup_scale(current_step)
//   per parameter with gradient g:
//     if k % DeltaT == 0: m = v = 0                          (t keeps counting)
//     t += 1
//     if theta != 0 and k >= 20 and k % DeltaT >= 20:
//       where g^2 > theta v: g = sign(g) sqrt(theta v)       (v is the raw previous second moment)
//     m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//     p -= s lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + eps)
//     p -= lr weight_decay p
//   total_step += 1; current_step += 1; if (total_step + 1) % DeltaT == 0: current_step = 0
// Unlike the official code, the clipped gradient is not written back into p.grad() (the update is the same).
class SPAM : public Optimizer {
 public:
  SPAM(std::vector<Tensor> params, SPAMOptions options = {});
  SPAM(std::vector<ParamGroup> groups, SPAMOptions options = {});
  std::string name() const override { return "SPAM"; }
  const SPAMOptions& options() const { return opt_; }

  // The warm-up factor at `current_step` steps after a reset: 1 - 0.99 (1 + cos(pi c / (N + 1))) / 2 for c < N,
  // else 1 (0.01 at c = 0). It is the official CosineDecay(0.99, N) built on CosineAnnealingLR(T_max = N + 1).
  static double warmup_scale(int64_t current_step, int64_t warmup_steps);

  int64_t total_step() const { return total_step_; }      // steps taken
  int64_t current_step() const { return current_step_; }  // steps since the last reset (starts at N + 1)
  double last_scale() const { return scale_; }            // the warm-up factor the last step used
  bool last_reset() const { return reset_; }              // whether the last step zeroed the moments
  bool last_clip() const { return clip_; }                // whether the last step clipped spikes

 protected:
  void begin_step() override;
  void update(const ParamGroup& group, const Tensor& p, const Tensor& grad, ParamState& state) override;
  void end_step() override;
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }

 private:
  SPAMOptions opt_;
  int64_t total_step_ = 0;
  int64_t current_step_;
  // Decided once per step in begin_step().
  double scale_ = 1;
  bool reset_ = false, clip_ = false;
};

}  // namespace tg::optim
