// SPAM's step: optimizer-wide reset / clipping decisions and warm-up factor, then the per-parameter update
// (fused kernel or composed reference).
#include "optim/spam.h"

#include <cmath>
#include <numbers>

#include "backends/backend.h"
#include "core/ops.h"

namespace tg::optim {

SPAM::SPAM(std::vector<Tensor> params, SPAMOptions options)
    : SPAM(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options) {}

SPAM::SPAM(std::vector<ParamGroup> groups, SPAMOptions options)
    : Optimizer(std::move(groups), options.lr, options.weight_decay), opt_(options) {
  TG_CHECK(opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1,
           "SPAM: betas must be in [0, 1), got ({}, {})", opt_.beta1, opt_.beta2);
  TG_CHECK(opt_.eps >= 0 && opt_.threshold >= 0, "SPAM: eps and threshold must be >= 0");
  TG_CHECK(opt_.warmup_steps >= 0 && opt_.delta_t >= 0 && opt_.grad_accu_steps >= 0,
           "SPAM: warmup_steps, delta_t and grad_accu_steps must be >= 0");
  current_step_ = opt_.warmup_steps + 1;  // no warm-up before the first reset
  register_option("beta1", &opt_.beta1);
  register_option("beta2", &opt_.beta2);
  register_option("eps", &opt_.eps);
  register_option("correct_bias", &opt_.correct_bias);
  register_option("warmup_steps", &opt_.warmup_steps);
  register_option("threshold", &opt_.threshold);
  register_option("delta_t", &opt_.delta_t);
  register_option("grad_accu_steps", &opt_.grad_accu_steps);
  register_counter("total_step", &total_step_);
  register_counter("current_step", &current_step_);
}

double SPAM::warmup_scale(int64_t c, int64_t n) {
  if (c >= n) return 1.0;
  // CosineAnnealingLR's closed form with base 0.99, eta_min 0, T_max = N + 1, in Python's operation order.
  double dr = 0.99 * (1 + std::cos(std::numbers::pi * static_cast<double>(c) / static_cast<double>(n + 1))) / 2;
  return 1 - dr;
}

void SPAM::begin_step() {
  const int64_t k = total_step_ + 1, dt = opt_.delta_t, accu = opt_.grad_accu_steps;
  scale_ = warmup_scale(current_step_, opt_.warmup_steps);
  reset_ = dt > 0 && k % dt == 0;
  clip_ = opt_.threshold != 0 && k >= accu && (dt == 0 || k % dt >= accu);
}

void SPAM::end_step() {
  ++total_step_;
  ++current_step_;
  if (opt_.delta_t > 0 && (total_step_ + 1) % opt_.delta_t == 0) current_step_ = 0;  // the next step resets
}

void SPAM::update(const ParamGroup& group, const Tensor& p, const Tensor& grad, ParamState& st) {
  Tensor m = state_tensor(st, "exp_avg", p), v = state_tensor(st, "exp_avg_sq", p);
  const double t = static_cast<double>(++st.step);
  double step_size = group.lr;
  if (opt_.correct_bias) step_size *= std::sqrt(1.0 - std::pow(opt_.beta2, t)) / (1.0 - std::pow(opt_.beta1, t));
  const double lr = group.lr, wd = group.weight_decay;

  if (opt_.fused) {
    OptimUpdate u;
    u.kind = OptimKind::SPAM;
    u.lr = lr;
    u.weight_decay = wd;
    u.beta1 = opt_.beta1;
    u.beta2 = opt_.beta2;
    u.eps = opt_.eps;
    u.step_size = step_size * scale_;
    u.reset = reset_;
    u.clip = clip_;
    u.threshold = opt_.threshold;
    backend_for(p).optim_update(u, p, grad, m, v, Tensor());
    return;
  }
  // The reference path, as galore_torch/SPAM.py writes it.
  Tensor param = p, g = grad;
  if (reset_) {
    m.zero_();
    v.zero_();
  }
  if (clip_) {
    Tensor cap2 = v * opt_.threshold;
    g = where(gt(g * g, cap2), sign(g) * sqrt(cap2), g);
  }
  m.mul_(opt_.beta1).add_(g, 1 - opt_.beta1);
  v.mul_(opt_.beta2).add_(g * g, 1 - opt_.beta2);
  param.add_(m / (sqrt(v) + opt_.eps), -step_size * scale_);
  if (wd > 0) param.add_(param, -lr * wd);
}

}  // namespace tg::optim
