// The recipe harness: what every recipe's main() shares, so that the recipe itself is only its model and its loop.
// It parses the command line with CLI11 (the common flags below plus the recipe's own), applies --seed, --threads
// and --device, turns every error into one clear line on stderr and a non-zero exit, and offers --bench timing.
//
//   int main(int argc, char** argv) {
//     tg::recipes::Harness h("char_rnn", "Character-level language model on Tiny Shakespeare");
//     std::string cell = "lstm";
//     h.app().add_option("--cell", cell, "recurrent cell")->check(CLI::IsMember({"lstm", "gru"}));
//     return h.main(argc, argv, [&] { ...train...; });
//   }
#pragma once
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdint>
#include <functional>
#include <string>

#include "core/device.h"

namespace tg::recipes {

// The flags every recipe has. Their defaults are the field initialisers, which a recipe may change by passing its
// own CommonFlags to Harness.
struct CommonFlags {
  uint64_t seed = 0;
  int threads = 0;           // 0: the library's default (OMP_NUM_THREADS, else every core)
  int64_t steps = 0;         // 0: the recipe's default (which may be a time budget)
  double minutes = 0;        // wall-clock budget for training; 0: none
  std::string device = "cpu";
  std::string out;           // where metrics, checkpoints and plots go; empty: no files (but --save implies one)
  bool save = false;         // write a checkpoint into --out at the end (and every --save-every steps)
  int64_t save_every = 0;
  std::string resume;        // a checkpoint file, or a folder holding ckpt.safetensors
  bool bench = false;        // time a fixed number of steps, print one JSON line, write nothing
  std::string data;          // the corpus file or folder
  int64_t log_every = 0;     // plain (non-terminal) progress: a line every N steps; 0: about every 5 seconds
  int64_t eval_every = 0;    // validation every N steps; 0: the recipe's default
  int64_t stop_after = 0;    // stop after this step as if interrupted (the schedule still spans the whole run)
};

class Harness {
 public:
  // `defaults` become the flags' defaults (and what --help shows).
  Harness(std::string name, std::string description, CommonFlags defaults = {});
  CLI::App& app() { return app_; }
  CommonFlags& flags() { return flags_; }
  const std::string& name() const { return name_; }

  // Parses argv, applies the common flags and runs body. Returns the process exit code: 0 on success (and for
  // --help), CLI11's code for a bad command line, 1 for any error body throws, printed as
  // "<name>: error: <message>". Ctrl-C during body sets interrupted() instead of killing the process, so a
  // recipe can stop cleanly and save.
  int main(int argc, char** argv, const std::function<void()>& body);

  Device device() const { return device_; }
  // The folder for output files ("" when there is none); created by main() when set.
  const std::string& out_dir() const { return flags_.out; }
  std::string out_path(const std::string& file) const;
  static bool interrupted();

 private:
  void apply_flags();
  std::string name_;
  CLI::App app_;
  CommonFlags flags_;
  Device device_ = kCPU;
};

// Peak resident memory of this process in MiB (getrusage).
double peak_rss_mb();

// --bench: runs step() `warmup` times untimed, then `steps` times, and prints one JSON line
//   {"recipe": ..., "tokens_per_s": ..., "ms_per_step": ..., "peak_rss_mb": ..., "steps": ..., "threads": ...}
// with tokens_per_s = tokens_per_step / (seconds per step).
void run_bench(const std::string& recipe, int64_t steps, int64_t warmup, double tokens_per_step,
               const std::function<void()>& step);

}  // namespace tg::recipes
