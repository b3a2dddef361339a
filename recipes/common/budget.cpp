// The step budget: a fixed count, or an estimate from the measured speed taken twice and then frozen.
#include "recipes/common/budget.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tg::recipes {

namespace {
// Steps after the run (re)starts at which the length is estimated: early enough that the warm-up is still on, late
// enough that the step time has settled (the first steps allocate and warm the caches).
constexpr int64_t kFirstEstimate = 30, kSecondEstimate = 200;
}  // namespace

StepBudget::StepBudget(int64_t steps, double budget_s, int64_t known_total)
    : steps_(steps), budget_s_(budget_s), total_(steps > 0 ? steps : known_total) {
  TG_CHECK(steps > 0 || budget_s > 0, "neither --steps nor --minutes is set: give one of them");
  if (known_total > 0) estimates_ = 2;  // fixed by the earlier part of the run
}

bool StepBudget::observe(int64_t step, double elapsed_s, double seconds_per_step, double eval_seconds_per_step) {
  if (!by_time() || estimates_ >= 2 || !std::isfinite(seconds_per_step)) return false;
  if (first_seen_ < 0) first_seen_ = step;
  const int64_t since = step - first_seen_ + 1;
  if (since != (estimates_ == 0 ? kFirstEstimate : kSecondEstimate)) return false;
  ++estimates_;
  const double per_step = seconds_per_step + (std::isfinite(eval_seconds_per_step) ? eval_seconds_per_step : 0);
  const double left = std::max(0.0, budget_s_ - elapsed_s);
  total_ = step + std::max<int64_t>(1, static_cast<int64_t>(std::floor(left / per_step)));
  return true;
}

bool StepBudget::done(int64_t step, double elapsed_s) const {
  if (total_ > 0 && step >= total_) return true;
  return budget_s_ > 0 && elapsed_s >= budget_s_;
}

}  // namespace tg::recipes
