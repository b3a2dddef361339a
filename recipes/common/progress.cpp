// The progress line: timing window, ETA, and the terminal/plain output rule.
#include "recipes/common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>

namespace tg::recipes {

namespace {
constexpr size_t kWindow = 30;       // steps the throughput is measured over
constexpr double kRedraw = 0.2;      // seconds between redraws on a terminal
constexpr double kPlainEvery = 5.0;  // seconds between plain lines when --log-every is 0
bool g_line_open = false;            // a \r line is on screen without its newline

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<int64_t>(std::llround(s));
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

bool Progress::is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

void Progress::close_line() {
  if (g_line_open) std::fputc('\n', stdout);
  g_line_open = false;
}

Progress::Progress(int64_t total_steps, double budget_s, int64_t log_every)
    : total_(total_steps), budget_s_(budget_s), log_every_(log_every), tty_(is_terminal()) {
  start(0);
}

void Progress::start(int64_t step, double elapsed_before) {
  t0_ = last_tick_ = last_print_ = Clock::now();
  last_step_ = step;
  before_ = elapsed_before;
  window_.clear();
  skip_ = false;
}

double Progress::elapsed() const { return before_ + seconds(Clock::now() - t0_); }

double Progress::seconds_per_step() const {
  if (window_.empty()) return NAN;
  double s = 0;
  for (const Tick& t : window_) s += t.seconds;
  return s / static_cast<double>(window_.size());
}

double Progress::tokens_per_s() const {
  double s = 0, n = 0;
  for (const Tick& t : window_) s += t.seconds, n += static_cast<double>(t.tokens);
  return s > 0 ? n / s : NAN;
}

std::string Progress::eta_string() const {
  double eta = NAN;
  if (total_ > 0 && !window_.empty()) eta = seconds_per_step() * static_cast<double>(total_ - last_step_);
  if (budget_s_ > 0) {
    const double left = std::max(0.0, budget_s_ - (elapsed() - before_));
    eta = std::isfinite(eta) ? std::min(eta, left) : left;
  }
  return format_duration(eta);
}

std::string Progress::line(int64_t step, double loss, double lr) const {
  std::string total = total_ > 0 ? fmt::format("/{}", total_) : "";
  const double tps = tokens_per_s();
  const std::string rate = !std::isfinite(tps) ? "-"
                           : tps >= 1e4        ? fmt::format("{:.1f}k", tps / 1e3)
                                               : fmt::format("{:.0f}", tps);
  return fmt::format("step {:>5}{} | loss {:.4f} | {} tok/s | lr {:.2e} | {} elapsed | ETA {}", step, total, loss,
                     rate, lr, format_duration(elapsed()), eta_string());
}

void Progress::update(int64_t step, double loss, double lr, int64_t tokens) {
  const auto now = Clock::now();
  if (!skip_) {
    window_.push_back({seconds(now - last_tick_), tokens});
    if (window_.size() > kWindow) window_.pop_front();
  }
  skip_ = false;
  last_tick_ = now;
  last_step_ = step;
  const bool last = total_ > 0 && step >= total_;
  bool due;
  if (tty_) due = last || seconds(now - last_print_) >= kRedraw;
  else if (log_every_ > 0) due = last || step % log_every_ == 0;
  else due = last || step == 1 || seconds(now - last_print_) >= kPlainEvery;
  if (!due) return;
  last_print_ = now;
  if (tty_) {
    std::fputs(("\r\033[K" + line(step, loss, lr)).c_str(), stdout);
    g_line_open = true;
  } else {
    std::puts(line(step, loss, lr).c_str());
  }
  std::fflush(stdout);
}

void Progress::message(const std::string& text) {
  if (tty_ && g_line_open) std::fputs("\r\033[K", stdout);
  g_line_open = false;
  std::puts(text.c_str());
  std::fflush(stdout);
}

void Progress::skip_interval() {
  skip_ = true;
  last_tick_ = Clock::now();
}

void Progress::finish() {
  close_line();
  std::fflush(stdout);
}

}  // namespace tg::recipes
