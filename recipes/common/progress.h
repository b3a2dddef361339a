// The live progress line of a training run:
//   step  420/1650 | loss 1.8123 | 19.4k tok/s | lr 1.87e-03 | 0:43 elapsed | ETA 2:07
// On a terminal it is redrawn in place (\r) a few times a second; otherwise (a log file, CI) it is printed as plain
// lines every --log-every steps or about every 5 seconds. Throughput and ETA come from the last few dozen steps,
// so they track the current speed rather than the average since the start.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

namespace tg::recipes {

class Progress {
 public:
  // total_steps may be 0 (not known yet: see set_total). budget_s > 0 caps the ETA by the time budget left.
  Progress(int64_t total_steps, double budget_s = 0, int64_t log_every = 0);
  void set_total(int64_t total_steps) { total_ = total_steps; }
  // Starts the clock; a resumed run starts at its checkpoint's step. elapsed_before: wall time of the earlier part
  // of the run, so elapsed() counts the whole run.
  void start(int64_t step, double elapsed_before = 0);
  // After each optimizer step: `tokens` is how many the step trained on. Redraws or prints when due.
  void update(int64_t step, double loss, double lr, int64_t tokens);
  // A line of its own (validation results, a sample) printed above the live line.
  void message(const std::string& text);
  // Leaves the time since the last update out of the throughput (call it after a validation pass).
  void skip_interval();
  // Ends the live line; the next output starts on a fresh line.
  void finish();

  double elapsed() const;        // seconds since start(), plus elapsed_before
  double tokens_per_s() const;   // over the recent window
  double seconds_per_step() const;
  std::string eta_string() const;

  static bool is_terminal();  // stdout is a terminal
  static void close_line();   // ends an unfinished live line (the harness calls it before an error message)

 private:
  using Clock = std::chrono::steady_clock;
  std::string line(int64_t step, double loss, double lr) const;
  int64_t total_;
  double budget_s_;
  int64_t log_every_;
  bool tty_;
  Clock::time_point t0_, last_tick_, last_print_;
  double before_ = 0;
  struct Tick {
    double seconds;
    int64_t tokens;
  };
  std::deque<Tick> window_;
  bool skip_ = false;
  int64_t last_step_ = 0;
};

// "1:05", "1:02:03".
std::string format_duration(double seconds);

}  // namespace tg::recipes
