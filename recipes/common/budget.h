// How many steps a training run makes: exactly --steps N, or as many as fit in the --minutes budget. A schedule
// such as warm-up + cosine needs its length up front, so in budget mode the length is estimated from the measured
// speed after a few dozen steps and refined now and then over the first three quarters of the run (the machine's
// speed may change); the run stops at that step, or at the budget if the estimate was too generous.
#pragma once
#include <cstdint>

namespace tg::recipes {

class StepBudget {
 public:
  // steps > 0: a fixed length (still stopped at budget_s when that is > 0). Otherwise budget_s (> 0) seconds of
  // training, counted over the whole run (a resumed run brings its earlier elapsed time). known_total > 0: a length
  // estimated earlier (from a checkpoint).
  StepBudget(int64_t steps, double budget_s, int64_t known_total = 0);
  bool by_time() const { return steps_ == 0; }
  int64_t total() const { return total_; }  // 0 while not estimated yet
  // The length to give a schedule now: total(), or a stand-in far beyond any real run while it is unknown.
  int64_t schedule_length() const { return total_ > 0 ? total_ : int64_t{1} << 40; }
  // Call after step `step` (counted from 1), with the run's elapsed training time, the current seconds per step and
  // the seconds of validation spread over each step. Returns true when total() changed.
  bool observe(int64_t step, double elapsed_s, double seconds_per_step, double eval_seconds_per_step);
  // Whether training should stop before running step + 1.
  bool done(int64_t step, double elapsed_s) const;

 private:
  int64_t steps_;
  double budget_s_;
  int64_t total_;
  int64_t first_seen_ = -1;
};

}  // namespace tg::recipes
