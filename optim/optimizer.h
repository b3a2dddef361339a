// tg::optim::Optimizer: what every optimizer shares. Parameter groups with their own learning rate and weight
// decay, per-parameter state created on a parameter's first step, zero_grad, and a state_dict of named tensors
// from which training resumes bit-exactly. A concrete optimizer only says how one parameter is updated.
//
//   tg::optim::Adam opt(model.parameters(), {.lr = 3e-4});
//   for (...) { opt.zero_grad(); loss.backward(); opt.step(); }
//
//   // groups: no weight decay on biases, a smaller lr for the embedding
//   tg::optim::AdamW opt({{.params = weights, .weight_decay = 0.1}, {.params = biases, .weight_decay = 0.0},
//                         {.params = {emb}, .lr = 1e-4}}, {.lr = 1e-3});
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace tg::optim {

// A ParamGroup field left at kUseDefault takes the optimizer's option, as a PyTorch param group without that key.
inline constexpr double kUseDefault = std::numeric_limits<double>::quiet_NaN();

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = kUseDefault;
  double weight_decay = kUseDefault;
};

// What an optimizer keeps for one parameter: how many updates it has had (the bias-correction counter of the Adam
// family) and named state tensors ("exp_avg", "momentum_buffer", ...), each of the parameter's shape and dtype.
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> tensors;
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  const Tensor& at(const std::string& name) const;  // a tg::Error naming the entry when absent
};

using StateDict = std::map<std::string, Tensor>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // An optimizer holds pointers into itself (its registered scalars), so it is neither copied nor moved.
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient, under NoGradGuard. Parameters without one (p.grad() undefined)
  // are skipped: their state and step counter stay as they are, as in PyTorch.
  virtual void step();
  // Drops every parameter's gradient (PyTorch's set_to_none = True), so the next backward starts from nothing.
  void zero_grad();

  // Groups are mutable so that schedulers and users can change lr and weight_decay between steps.
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Adds a group; its unset fields take the optimizer's defaults. A parameter may appear in one group only.
  void add_param_group(ParamGroup group);
  std::vector<Tensor> parameters() const;  // every parameter, in group order

  ParamState& state(size_t group, size_t index);
  const ParamState& state(size_t group, size_t index) const;

  // Everything step() depends on, as named tensors:
  //   group.<g>.lr, group.<g>.weight_decay (0-d float64), group.<g>.num_params (0-d int64)
  //   option.<name>   the optimizer's hyper-parameters (0-d float64; int64 for counts and flags)
  //   counter.<name>  optimizer-wide step counters (0-d int64), e.g. SPAM's total_step
  //   state.<g>.<i>.step and state.<g>.<i>.<tensor>  the state of parameter i of group g, once it has any
  // The state tensors are the live ones (no copy); load_state_dict copies.
  StateDict state_dict() const;
  // Restores a state_dict of the same optimizer type over the same groups (same counts and shapes). Every entry
  // is checked before anything changes; a missing, unexpected or mismatched entry is a tg::Error naming it.
  // Floating state tensors are converted to their parameter's dtype and device.
  void load_state_dict(const StateDict& dict);

  virtual std::string name() const = 0;  // "SGD", "Adam", ...

  // The registered floating hyper-parameter `name` ("momentum", "beta1", ...), or nullptr; schedules that cycle
  // momentum (OneCycleLR) set it through this.
  double* find_option(const std::string& name);

 protected:
  // Groups with unset fields take default_lr / default_weight_decay; every lr must then be set and >= 0.
  Optimizer(std::vector<ParamGroup> groups, double default_lr, double default_weight_decay);

  // Hooks around the per-parameter loop, for optimizer-wide counters (SPAM's reset and warm-up).
  virtual void begin_step() {}
  virtual void end_step() {}
  // Updates p in place from grad (same shape and dtype, checked), creating state on the first call.
  virtual void update(const ParamGroup& group, const Tensor& p, const Tensor& grad, ParamState& state) = 0;
  // The names update() may put in ParamState::tensors; load_state_dict accepts no others.
  virtual std::vector<std::string> state_names() const = 0;

  // Registers a member as a named scalar of the state_dict ("option.<name>" or "counter.<name>").
  void register_option(const std::string& name, double* v);
  void register_option(const std::string& name, int64_t* v);
  void register_option(const std::string& name, bool* v);
  void register_counter(const std::string& name, int64_t* v);

  // The state tensor `name` of p, created as zeros of p's shape and dtype when absent; *created says which.
  static Tensor state_tensor(ParamState& st, const std::string& name, const Tensor& p, bool* created = nullptr);

 private:
  struct Scalar {
    std::string key;
    std::variant<double*, int64_t*, bool*> ptr;
  };
  void add_scalar(std::string key, std::variant<double*, int64_t*, bool*> ptr);

  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][index], parallel to groups_
  std::vector<Scalar> scalars_;
  double default_lr_, default_weight_decay_;
};

}  // namespace tg::optim
