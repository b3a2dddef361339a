// Adam's and AdamW's update: the fused backend kernel, or the readable reference written with tensor ops.
#include "optim/adam.h"

#include <cmath>

#include "backends/backend.h"
#include "core/ops.h"

namespace tg::optim {

AdamOptions Adam::resolve(AdamOptions o, bool decoupled) {
  if (std::isnan(o.weight_decay)) o.weight_decay = decoupled ? 1e-2 : 0.0;
  const char* who = decoupled ? "AdamW" : "Adam";
  TG_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "{}: betas must be in [0, 1), got ({}, {})",
           who, o.beta1, o.beta2);
  TG_CHECK(o.eps >= 0, "{}: invalid eps {}", who, o.eps);
  return o;
}

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options, false) {}
Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled)
    : Optimizer(std::move(groups), options.lr, resolve(options, decoupled).weight_decay),
      opt_(resolve(options, decoupled)),
      decoupled_(decoupled) {
  register_option("beta1", &opt_.beta1);
  register_option("beta2", &opt_.beta2);
  register_option("eps", &opt_.eps);
  register_option("amsgrad", &opt_.amsgrad);
}

AdamW::AdamW(std::vector<Tensor> params, AdamOptions options)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options, true) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, true) {}

void Adam::update(const ParamGroup& group, const Tensor& p, const Tensor& grad, ParamState& st) {
  Tensor m = state_tensor(st, "exp_avg", p), v = state_tensor(st, "exp_avg_sq", p);
  Tensor vmax = opt_.amsgrad ? state_tensor(st, "max_exp_avg_sq", p) : Tensor();
  const double t = static_cast<double>(++st.step);
  // Scalars in double, as PyTorch computes them in Python.
  const double bias_correction1 = 1 - std::pow(opt_.beta1, t);
  const double bias_correction2 = 1 - std::pow(opt_.beta2, t);
  const double step_size = group.lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  const double lr = group.lr, wd = group.weight_decay;

  if (opt_.fused) {
    OptimUpdate u;
    u.kind = OptimKind::Adam;
    u.lr = lr;
    u.weight_decay = wd;
    u.beta1 = opt_.beta1;
    u.beta2 = opt_.beta2;
    u.eps = opt_.eps;
    u.step_size = step_size;
    u.bias_correction2_sqrt = bias_correction2_sqrt;
    u.amsgrad = opt_.amsgrad;
    u.decoupled = decoupled_;
    backend_for(p).optim_update(u, p, grad, m, v, vmax);
    return;
  }
  // The reference path: torch.optim.adam._single_tensor_adam, line for line.
  Tensor param = p, g = grad;
  if (decoupled_) param.mul_(1 - lr * wd);
  else if (wd != 0) g = g + param * wd;
  m.mul_(opt_.beta1).add_(g, 1 - opt_.beta1);
  v.mul_(opt_.beta2).add_(g * g, 1 - opt_.beta2);
  Tensor second = v;
  if (opt_.amsgrad) {
    vmax.copy_(maximum(vmax, v));
    second = vmax;
  }
  Tensor denom = sqrt(second) / bias_correction2_sqrt + opt_.eps;
  param.add_(m / denom, -step_size);
}

}  // namespace tg::optim
