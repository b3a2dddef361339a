// tg::optim::SGD: stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
// step for step as torch.optim.SGD (the momentum buffer starts as the first gradient, not as zero).
#pragma once
#include "optim/optimizer.h"

namespace tg::optim {

struct SGDOptions {
  double lr = kUseDefault;  // required (here or in every group), as in PyTorch
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;  // L2: added to the gradient, g += weight_decay * p
  bool nesterov = false;    // needs momentum > 0 and dampening == 0
  bool fused = true;        // false: the composed-op reference path (same arithmetic, for reading and testing)
};

// Per parameter p with gradient g (state: "momentum_buffer" b, when momentum != 0):
//   d = g + weight_decay p
//   b = d on the first step, else b = momentum b + (1 - dampening) d
//   d = nesterov ? d + momentum b : b
//   p = p - lr d
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);
  SGD(std::vector<ParamGroup> groups, SGDOptions options);
  std::string name() const override { return "SGD"; }
  const SGDOptions& options() const { return opt_; }

 protected:
  void update(const ParamGroup& group, const Tensor& p, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> state_names() const override { return {"momentum_buffer"}; }

 private:
  SGDOptions opt_;
};

}  // namespace tg::optim
