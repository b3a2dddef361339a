// tg::optim::Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), step for step as torch.optim's
// single-tensor implementations: Adam's weight decay is L2 (added to the gradient), AdamW's is decoupled.
#pragma once
#include "optim/optimizer.h"

namespace tg::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = kUseDefault;  // unset: 0 for Adam, 0.01 for AdamW (PyTorch's defaults)
  bool amsgrad = false;               // normalise by the running maximum of v ("max_exp_avg_sq")
  bool fused = true;                  // false: the composed-op reference path
};

// Per parameter p with gradient g, t = the parameter's step count after increment (state "exp_avg" m,
// "exp_avg_sq" v):
//   Adam:  g = g + weight_decay p          AdamW: p = p (1 - lr weight_decay)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p - (lr / (1 - beta1^t)) m / denom
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});
  Adam(std::vector<ParamGroup> groups, AdamOptions options = {});
  std::string name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return opt_; }

 protected:
  Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled);
  void update(const ParamGroup& group, const Tensor& p, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }

 private:
  static AdamOptions resolve(AdamOptions o, bool decoupled);
  AdamOptions opt_;
  bool decoupled_;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamOptions options = {});
  AdamW(std::vector<ParamGroup> groups, AdamOptions options = {});
};

}  // namespace tg::optim
