// The step budget: a fixed count, or an estimate from the measured speed, refined during the first three quarters.
#include "recipes/common/budget.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tg::recipes {

namespace {
// When to (re)estimate, in steps since the run (re)started: early enough that the warm-up is still on, late enough
// that the step time has settled (the first steps allocate and warm the caches); then every kEvery steps while
// less than kLastFraction of the run is done, since other load on the machine changes the speed. Moving the end of
// a cosine schedule by a few percent mid-run changes the lr only slightly.
constexpr int64_t kFirst = 30, kSecond = 200, kEvery = 250;
constexpr double kLastFraction = 0.75;
}  // namespace

StepBudget::StepBudget(int64_t steps, double budget_s, int64_t known_total)
    : steps_(steps), budget_s_(budget_s), total_(steps > 0 ? steps : known_total) {
  TG_CHECK(steps > 0 || budget_s > 0, "neither --steps nor --minutes is set: give one of them");
}

bool StepBudget::observe(int64_t step, double elapsed_s, double seconds_per_step, double eval_seconds_per_step) {
  if (!by_time() || !std::isfinite(seconds_per_step) || seconds_per_step <= 0) return false;
  if (first_seen_ < 0) first_seen_ = step;
  const int64_t since = step - first_seen_ + 1;
  const bool due = since == kFirst || since == kSecond ||
                   (since > kSecond && since % kEvery == 0 && step < kLastFraction * static_cast<double>(total_));
  if (!due) return false;
  const double per_step = seconds_per_step + (std::isfinite(eval_seconds_per_step) ? eval_seconds_per_step : 0);
  const double left = std::max(0.0, budget_s_ - elapsed_s);
  const int64_t total = step + std::max<int64_t>(1, static_cast<int64_t>(std::floor(left / per_step)));
  if (total == total_) return false;
  total_ = total;
  return true;
}

bool StepBudget::done(int64_t step, double elapsed_s) const {
  if (total_ > 0 && step >= total_) return true;
  return budget_s_ > 0 && elapsed_s >= budget_s_;
}

}  // namespace tg::recipes
