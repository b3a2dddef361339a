// SGD's update: the fused backend kernel, or the same steps written with tensor ops.
#include "optim/sgd.h"

#include "backends/backend.h"
#include "core/ops.h"

namespace tg::optim {

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer(std::move(groups), options.lr, options.weight_decay), opt_(options) {
  TG_CHECK(opt_.momentum >= 0, "SGD: invalid momentum {}", opt_.momentum);
  TG_CHECK(!opt_.nesterov || (opt_.momentum > 0 && opt_.dampening == 0),
           "SGD: Nesterov momentum requires a momentum > 0 and zero dampening (got momentum {}, dampening {})",
           opt_.momentum, opt_.dampening);
  register_option("momentum", &opt_.momentum);
  register_option("dampening", &opt_.dampening);
  register_option("nesterov", &opt_.nesterov);
}

void SGD::update(const ParamGroup& group, const Tensor& p, const Tensor& grad, ParamState& st) {
  ++st.step;
  bool first = false;
  Tensor buf = opt_.momentum != 0 ? state_tensor(st, "momentum_buffer", p, &first) : Tensor();
  if (opt_.fused) {
    OptimUpdate u;
    u.kind = OptimKind::SGD;
    u.lr = group.lr;
    u.weight_decay = group.weight_decay;
    u.momentum = opt_.momentum;
    u.dampening = opt_.dampening;
    u.nesterov = opt_.nesterov;
    u.first = first;
    backend_for(p).optim_update(u, p, grad, buf, Tensor(), Tensor());
    return;
  }
  Tensor d = group.weight_decay != 0 ? grad + p * group.weight_decay : grad;
  if (opt_.momentum != 0) {
    if (first) buf.copy_(d);
    else buf.mul_(opt_.momentum).add_(d, 1 - opt_.dampening);
    d = opt_.nesterov ? d + buf * opt_.momentum : buf;
  }
  Tensor(p).add_(d, -group.lr);
}

}  // namespace tg::optim
