// Learning-rate schedules. A scheduler owns a step counter t and sets every group's lr to lr_at(t, base) when
// built (t = 0) and after each step(); call it once per optimizer step, after opt.step(), as in PyTorch:
//
//   tg::optim::AdamW opt(params, {.lr = 3e-4});
//   tg::optim::WarmupCosineLR sched(opt, /*warmup_steps=*/100, /*total_steps=*/5000, /*min_lr=*/3e-5);
//   for (...) { ...; opt.step(); sched.step(); }
//
// base is each group's lr when the scheduler was built (OneCycleLR: max_lr). Its state_dict holds t and the
// bases, so a resumed run sets the same lrs.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg::optim {

class Optimizer;

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  void step();                               // t += 1, then set the lrs
  int64_t last_step() const { return t_; }   // PyTorch's last_epoch
  double get_lr(size_t group = 0) const;     // the lr the schedule gives group `group` now
  // The schedule: the lr at step t for a group whose base lr is `base`.
  virtual double lr_at(int64_t t, double base) const = 0;
  virtual std::string name() const = 0;

  // "t" (0-d int64) and "base_lr.<g>" (0-d float64).
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& dict);

 protected:
  // bases empty: each group's current lr.
  explicit LRScheduler(Optimizer& opt, std::vector<double> bases = {});
  // Sets the lrs (and, in subclasses, anything else) for step t_; constructors of subclasses call it once.
  virtual void apply();
  Optimizer& opt_;
  std::vector<double> base_;
  int64_t t_ = 0;
};

// lr = base.
class ConstantLR : public LRScheduler {
 public:
  explicit ConstantLR(Optimizer& opt);
  double lr_at(int64_t, double base) const override { return base; }
  std::string name() const override { return "ConstantLR"; }
};

// torch.optim.lr_scheduler.StepLR: lr = base * gamma^floor(t / step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& opt, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t t, double base) const override;
  std::string name() const override { return "StepLR"; }

 private:
  int64_t step_size_;
  double gamma_;
};

// Linear warm-up then cosine decay to min_lr (nanoGPT's get_lr):
//   t < warmup:           base * (t + 1) / warmup
//   warmup <= t <= total: min_lr + (base - min_lr) (1 + cos(pi (t - warmup) / (total - warmup))) / 2
//   t > total:            min_lr
class WarmupCosineLR : public LRScheduler {
 public:
  WarmupCosineLR(Optimizer& opt, int64_t warmup_steps, int64_t total_steps, double min_lr = 0);
  double lr_at(int64_t t, double base) const override;
  std::string name() const override { return "WarmupCosineLR"; }

 private:
  int64_t warmup_, total_;
  double min_lr_;
};

// torch.optim.lr_scheduler.OneCycleLR with two phases and cosine annealing (its defaults): the lr rises from
// max_lr / div_factor to max_lr over the first pct_start of total_steps, then falls to
// max_lr / div_factor / final_div_factor at step total_steps - 1. With cycle_momentum, the optimizer's "momentum"
// (SGD) or "beta1" (Adam family) moves the other way, from max_momentum to base_momentum and back.
struct OneCycleOptions {
  double pct_start = 0.3;
  double div_factor = 25;
  double final_div_factor = 1e4;
  bool cycle_momentum = true;
  double base_momentum = 0.85, max_momentum = 0.95;
};

class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& opt, double max_lr, int64_t total_steps, OneCycleOptions options = {});
  double lr_at(int64_t t, double max_lr) const override;
  double momentum_at(int64_t t) const;
  std::string name() const override { return "OneCycleLR"; }

 protected:
  void apply() override;

 private:
  // The phase containing t and how far through it t is.
  void phase(int64_t t, int* index, double* pct) const;
  int64_t total_;
  OneCycleOptions o_;
  double* momentum_ = nullptr;  // the optimizer's option, when cycling
};

}  // namespace tg::optim
