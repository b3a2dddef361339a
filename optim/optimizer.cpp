// The Optimizer machinery: groups, the step loop, and state_dict save/restore with checked entries.
#include "optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace tg::optim {

namespace {

Tensor f64_scalar(double v) { return scalar_tensor(v, kFloat64); }
Tensor i64_scalar(int64_t v) {
  Tensor t = empty({}, kInt64);
  *t.data<int64_t>() = v;
  return t;
}

// Splits "state.<g>.<i>.<name>" into its parts; false when the key does not have that form.
bool parse_state_key(const std::string& key, size_t* g, size_t* i, std::string* name) {
  const std::string prefix = "state.";
  if (key.rfind(prefix, 0) != 0) return false;
  size_t a = prefix.size(), b = key.find('.', a);
  if (b == std::string::npos) return false;
  size_t c = key.find('.', b + 1);
  if (c == std::string::npos || c + 1 >= key.size()) return false;
  auto number = [](const std::string& s, size_t* out) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    *out = std::stoul(s);
    return true;
  };
  *name = key.substr(c + 1);
  return number(key.substr(a, b - a), g) && number(key.substr(b + 1, c - b - 1), i);
}

}  // namespace

const Tensor& ParamState::at(const std::string& name) const {
  auto it = tensors.find(name);
  TG_CHECK(it != tensors.end(), "ParamState: no state tensor '{}'", name);
  return it->second;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double default_lr, double default_weight_decay)
    : default_lr_(default_lr), default_weight_decay_(default_weight_decay) {
  for (auto& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  // name() is virtual and not yet usable while a derived constructor runs, so errors say "optimizer".
  if (std::isnan(group.lr)) group.lr = default_lr_;
  if (std::isnan(group.weight_decay)) group.weight_decay = default_weight_decay_;
  size_t gi = groups_.size();
  TG_CHECK(!std::isnan(group.lr), "optimizer: param group {} has no learning rate: set the options' lr or the "
           "group's lr", gi);
  TG_CHECK(group.lr >= 0, "optimizer: param group {}: invalid learning rate {}", gi, group.lr);
  TG_CHECK(group.weight_decay >= 0, "optimizer: param group {}: invalid weight decay {}", gi, group.weight_decay);
  std::set<const TensorImpl*> seen;
  for (const auto& gr : groups_)
    for (const auto& p : gr.params) seen.insert(p.impl());
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    TG_CHECK(p.defined(), "optimizer: param group {}: parameter {} is an undefined tensor", gi, i);
    TG_CHECK(p.is_floating_point(), "optimizer: param group {}: parameter {} has dtype {}; only floating tensors "
             "can be optimized", gi, i, dtype_name(p.dtype()));
    TG_CHECK(p.is_leaf(), "optimizer: param group {}: parameter {} (shape {}) is not a leaf tensor; optimize the "
             "leaves it was computed from", gi, i, shape_str(p.sizes()));
    TG_CHECK(seen.insert(p.impl()).second, "optimizer: param group {}: parameter {} (shape {}) appears more than "
             "once among the groups", gi, i, shape_str(p.sizes()));
  }
  state_.emplace_back(group.params.size());
  groups_.push_back(std::move(group));
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (const auto& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

ParamState& Optimizer::state(size_t group, size_t index) {
  TG_CHECK(group < state_.size() && index < state_[group].size(), "{}: no parameter {} in group {}", name(), index,
           group);
  return state_[group][index];
}
const ParamState& Optimizer::state(size_t group, size_t index) const {
  return const_cast<Optimizer*>(this)->state(group, index);
}

void Optimizer::step() {
  NoGradGuard no_grad;
  begin_step();
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Tensor& p = groups_[g].params[i];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      TG_CHECK(grad.sizes() == p.sizes() && grad.dtype() == p.dtype() && grad.device() == p.device(),
               "{}.step: parameter {} of group {} is {} {} but its gradient is {} {}", name(), i, g,
               dtype_name(p.dtype()), shape_str(p.sizes()), dtype_name(grad.dtype()), shape_str(grad.sizes()));
      update(groups_[g], p, grad, state_[g][i]);
    }
  }
  end_step();
}

void Optimizer::zero_grad() {
  for (const auto& g : groups_)
    for (const auto& p : g.params) p.zero_grad();
}

Tensor Optimizer::state_tensor(ParamState& st, const std::string& name, const Tensor& p, bool* created) {
  auto it = st.tensors.find(name);
  if (created) *created = it == st.tensors.end();
  if (it != st.tensors.end()) return it->second;
  Tensor t = zeros(p.sizes(), p.options().requires_grad(false));
  st.tensors.emplace(name, t);
  return t;
}

void Optimizer::add_scalar(std::string key, std::variant<double*, int64_t*, bool*> ptr) {
  for (const auto& s : scalars_) TG_CHECK(s.key != key, "optimizer: scalar '{}' registered twice", key);
  scalars_.push_back({std::move(key), ptr});
}
double* Optimizer::find_option(const std::string& name) {
  for (auto& s : scalars_)
    if (s.key == "option." + name && std::holds_alternative<double*>(s.ptr)) return std::get<double*>(s.ptr);
  return nullptr;
}

void Optimizer::register_option(const std::string& name, double* v) { add_scalar("option." + name, v); }
void Optimizer::register_option(const std::string& name, int64_t* v) { add_scalar("option." + name, v); }
void Optimizer::register_option(const std::string& name, bool* v) { add_scalar("option." + name, v); }
void Optimizer::register_counter(const std::string& name, int64_t* v) { add_scalar("counter." + name, v); }

StateDict Optimizer::state_dict() const {
  StateDict d;
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::string pre = "group." + std::to_string(g) + ".";
    d[pre + "lr"] = f64_scalar(groups_[g].lr);
    d[pre + "weight_decay"] = f64_scalar(groups_[g].weight_decay);
    d[pre + "num_params"] = i64_scalar(static_cast<int64_t>(groups_[g].params.size()));
  }
  for (const auto& s : scalars_) {
    std::visit(
        [&](auto* p) {
          using V = std::remove_pointer_t<decltype(p)>;
          d[s.key] = std::is_same_v<V, double> ? f64_scalar(static_cast<double>(*p)) : i64_scalar(int64_t(*p));
        },
        s.ptr);
  }
  for (size_t g = 0; g < state_.size(); ++g) {
    for (size_t i = 0; i < state_[g].size(); ++i) {
      const ParamState& st = state_[g][i];
      if (st.step == 0 && st.tensors.empty()) continue;
      std::string pre = "state." + std::to_string(g) + "." + std::to_string(i) + ".";
      d[pre + "step"] = i64_scalar(st.step);
      for (const auto& [n, t] : st.tensors) d[pre + n] = t;
    }
  }
  return d;
}

void Optimizer::load_state_dict(const StateDict& dict) {
  const std::string op = name() + "::load_state_dict";
  std::set<std::string> used;
  auto get = [&](const std::string& key) -> const Tensor& {
    auto it = dict.find(key);
    TG_CHECK(it != dict.end(), "{}: missing entry '{}'", op, key);
    TG_CHECK(it->second.defined() && it->second.numel() == 1, "{}: entry '{}' must hold one value, got shape {}",
             op, key, it->second.defined() ? shape_str(it->second.sizes()) : "undefined");
    used.insert(key);
    return it->second;
  };
  auto get_f64 = [&](const std::string& key) {
    const Tensor& t = get(key);
    TG_CHECK(t.is_floating_point(), "{}: entry '{}' must be floating, got {}", op, key, dtype_name(t.dtype()));
    return t.item<double>();
  };
  auto get_i64 = [&](const std::string& key) {
    const Tensor& t = get(key);
    TG_CHECK(t.dtype() == kInt64, "{}: entry '{}' must be int64, got {}", op, key, dtype_name(t.dtype()));
    return t.item<int64_t>();
  };

  // Groups: the same number, each with the same number of parameters.
  size_t ngroups = 0;
  while (dict.count("group." + std::to_string(ngroups) + ".lr")) ++ngroups;
  TG_CHECK(ngroups == groups_.size(), "{}: the state has {} param group(s) but the optimizer has {}", op, ngroups,
           groups_.size());
  std::vector<std::pair<double, double>> hyper(ngroups);
  for (size_t g = 0; g < ngroups; ++g) {
    std::string pre = "group." + std::to_string(g) + ".";
    hyper[g] = {get_f64(pre + "lr"), get_f64(pre + "weight_decay")};
    int64_t n = get_i64(pre + "num_params");
    TG_CHECK(n == static_cast<int64_t>(groups_[g].params.size()),
             "{}: entry '{}num_params': the state's group {} has {} parameters but the optimizer's has {}", op, pre,
             g, n, groups_[g].params.size());
  }

  // Scalars, read now and written once everything has been checked.
  std::vector<std::variant<double, int64_t>> values;
  for (const auto& s : scalars_) {
    if (std::holds_alternative<double*>(s.ptr)) values.emplace_back(get_f64(s.key));
    else values.emplace_back(get_i64(s.key));
  }

  // Per-parameter state.
  std::vector<std::string> names = state_names();
  std::vector<std::vector<ParamState>> state(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) state[g].resize(groups_[g].params.size());
  for (const auto& [key, t] : dict) {
    size_t g = 0, i = 0;
    std::string field;
    if (!parse_state_key(key, &g, &i, &field)) continue;
    TG_CHECK(g < groups_.size() && i < groups_[g].params.size(), "{}: entry '{}' names parameter {} of group {}, "
             "which the optimizer does not have", op, key, i, g);
    ParamState& st = state[g][i];
    if (field == "step") {
      st.step = get_i64(key);
      TG_CHECK(st.step >= 0, "{}: entry '{}' is negative ({})", op, key, st.step);
      continue;
    }
    TG_CHECK(std::find(names.begin(), names.end(), field) != names.end(), "{}: unexpected entry '{}' ({} keeps no "
             "state named '{}')", op, key, name(), field);
    const Tensor& p = groups_[g].params[i];
    TG_CHECK(t.defined() && t.sizes() == p.sizes(), "{}: entry '{}' has shape {} but parameter {} of group {} has "
             "shape {}", op, key, t.defined() ? shape_str(t.sizes()) : "undefined", i, g, shape_str(p.sizes()));
    TG_CHECK(t.is_floating_point(), "{}: entry '{}' must be floating, got {}", op, key, dtype_name(t.dtype()));
    used.insert(key);
    st.tensors[field] = t.to(p.dtype()).to(p.device()).detach().clone();
  }
  for (const auto& [key, t] : dict)
    TG_CHECK(used.count(key), "{}: unexpected entry '{}'", op, key);

  // Commit.
  for (size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].lr = hyper[g].first;
    groups_[g].weight_decay = hyper[g].second;
  }
  for (size_t k = 0; k < scalars_.size(); ++k) {
    std::visit(
        [&](auto* p) {
          using V = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<V, double>) *p = std::get<double>(values[k]);
          else *p = static_cast<V>(std::get<int64_t>(values[k]));
        },
        scalars_[k].ptr);
  }
  state_ = std::move(state);
}

}  // namespace tg::optim
