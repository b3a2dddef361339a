// Learning-rate schedules in closed form, and their state.
#include "optim/schedule.h"

#include <cmath>
#include <numbers>

#include "core/ops.h"
#include "optim/optimizer.h"

namespace tg::optim {

LRScheduler::LRScheduler(Optimizer& opt, std::vector<double> bases) : opt_(opt), base_(std::move(bases)) {
  if (base_.empty())
    for (const auto& g : opt.param_groups()) base_.push_back(g.lr);
  TG_CHECK(base_.size() == opt.param_groups().size(), "LRScheduler: {} base lrs for {} param groups", base_.size(),
           opt.param_groups().size());
}

void LRScheduler::apply() {
  auto& groups = opt_.param_groups();
  TG_CHECK(groups.size() == base_.size(), "{}: the optimizer has {} param groups but the scheduler was built for {}",
           name(), groups.size(), base_.size());
  for (size_t g = 0; g < groups.size(); ++g) groups[g].lr = lr_at(t_, base_[g]);
}

void LRScheduler::step() {
  ++t_;
  apply();
}

double LRScheduler::get_lr(size_t group) const {
  TG_CHECK(group < base_.size(), "{}: no param group {}", name(), group);
  return lr_at(t_, base_[group]);
}

std::map<std::string, Tensor> LRScheduler::state_dict() const {
  std::map<std::string, Tensor> d;
  d["t"] = tensor<int64_t>({t_}).reshape({});
  for (size_t g = 0; g < base_.size(); ++g) d["base_lr." + std::to_string(g)] = scalar_tensor(base_[g], kFloat64);
  return d;
}

void LRScheduler::load_state_dict(const std::map<std::string, Tensor>& dict) {
  const std::string op = name() + "::load_state_dict";
  auto get = [&](const std::string& key, DType dt) -> const Tensor& {
    auto it = dict.find(key);
    TG_CHECK(it != dict.end(), "{}: missing entry '{}'", op, key);
    TG_CHECK(it->second.defined() && it->second.numel() == 1 && it->second.dtype() == dt,
             "{}: entry '{}' must be one {} value", op, key, dtype_name(dt));
    return it->second;
  };
  TG_CHECK(dict.size() == base_.size() + 1, "{}: expected 't' and {} 'base_lr.<g>' entries, got {} entries", op,
           base_.size(), dict.size());
  int64_t t = get("t", kInt64).item<int64_t>();
  TG_CHECK(t >= 0, "{}: entry 't' is negative ({})", op, t);
  std::vector<double> bases;
  for (size_t g = 0; g < base_.size(); ++g) bases.push_back(get("base_lr." + std::to_string(g), kFloat64).item<double>());
  t_ = t;
  base_ = bases;
  apply();
}

ConstantLR::ConstantLR(Optimizer& opt) : LRScheduler(opt) { apply(); }

StepLR::StepLR(Optimizer& opt, int64_t step_size, double gamma)
    : LRScheduler(opt), step_size_(step_size), gamma_(gamma) {
  TG_CHECK(step_size > 0, "StepLR: step_size must be > 0, got {}", step_size);
  apply();
}

double StepLR::lr_at(int64_t t, double base) const {
  return base * std::pow(gamma_, static_cast<double>(t / step_size_));
}

WarmupCosineLR::WarmupCosineLR(Optimizer& opt, int64_t warmup_steps, int64_t total_steps, double min_lr)
    : LRScheduler(opt), warmup_(warmup_steps), total_(total_steps), min_lr_(min_lr) {
  TG_CHECK(warmup_steps >= 0 && total_steps > warmup_steps,
           "WarmupCosineLR: need 0 <= warmup_steps < total_steps, got {} and {}", warmup_steps, total_steps);
  apply();
}

double WarmupCosineLR::lr_at(int64_t t, double base) const {
  if (t < warmup_) return base * static_cast<double>(t + 1) / static_cast<double>(warmup_);
  if (t > total_) return min_lr_;
  double progress = static_cast<double>(t - warmup_) / static_cast<double>(total_ - warmup_);
  return min_lr_ + (base - min_lr_) * (1 + std::cos(std::numbers::pi * progress)) / 2;
}

namespace {
std::vector<double> repeat(double v, size_t n) { return std::vector<double>(n, v); }
// OneCycleLR's _annealing_cos: from start (pct 0) to end (pct 1).
double anneal_cos(double start, double end, double pct) {
  double cos_out = std::cos(std::numbers::pi * pct) + 1;
  return end + (start - end) / 2.0 * cos_out;
}
}  // namespace

OneCycleLR::OneCycleLR(Optimizer& opt, double max_lr, int64_t total_steps, OneCycleOptions options)
    : LRScheduler(opt, repeat(max_lr, opt.param_groups().size())), total_(total_steps), o_(options) {
  TG_CHECK(total_steps > 0, "OneCycleLR: total_steps must be > 0, got {}", total_steps);
  TG_CHECK(o_.pct_start >= 0 && o_.pct_start <= 1, "OneCycleLR: pct_start must be in [0, 1], got {}", o_.pct_start);
  if (o_.cycle_momentum) {
    momentum_ = opt.find_option("momentum");
    if (!momentum_) momentum_ = opt.find_option("beta1");
    TG_CHECK(momentum_ != nullptr, "OneCycleLR: {} has no momentum or beta1 to cycle; pass cycle_momentum = false",
             opt.name());
  }
  apply();
}

void OneCycleLR::phase(int64_t t, int* index, double* pct) const {
  TG_CHECK(t <= total_, "OneCycleLR: stepped {} times, but total_steps is {}", t, total_);
  // Phase ends as PyTorch computes them: float(pct_start * total_steps) - 1, then total_steps - 1.
  const double end0 = o_.pct_start * static_cast<double>(total_) - 1, end1 = static_cast<double>(total_) - 1;
  const double s = static_cast<double>(t);
  if (s <= end0) {
    *index = 0;
    *pct = s / end0;
  } else {
    *index = 1;
    *pct = (s - end0) / (end1 - end0);
  }
}

double OneCycleLR::lr_at(int64_t t, double max_lr) const {
  int i;
  double pct;
  phase(t, &i, &pct);
  const double initial = max_lr / o_.div_factor, min_lr = initial / o_.final_div_factor;
  return i == 0 ? anneal_cos(initial, max_lr, pct) : anneal_cos(max_lr, min_lr, pct);
}

double OneCycleLR::momentum_at(int64_t t) const {
  int i;
  double pct;
  phase(t, &i, &pct);
  return i == 0 ? anneal_cos(o_.max_momentum, o_.base_momentum, pct) : anneal_cos(o_.base_momentum, o_.max_momentum, pct);
}

void OneCycleLR::apply() {
  LRScheduler::apply();
  if (momentum_) *momentum_ = momentum_at(t_);
}

}  // namespace tg::optim
