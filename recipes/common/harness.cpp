// The harness: flag definitions, the error boundary of every recipe, device and thread setup, Ctrl-C, --bench.
#include "recipes/common/harness.h"

#include "backends/cuda.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "backends/backend.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/random.h"
#include "recipes/common/progress.h"

namespace tg::recipes {

namespace {
volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }
}  // namespace

Harness::Harness(std::string name, std::string description, CommonFlags defaults)
    : name_(std::move(name)), app_(std::move(description), name_), flags_(std::move(defaults)) {
  // A flag given twice takes its last value, so scripts can append overrides to a base command line.
  app_.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app_.get_formatter()->column_width(36);
  CommonFlags& f = flags_;
  app_.add_option("--seed", f.seed, "random seed: initialisation, data order, sampling")->type_name("N");
  app_.add_option("--threads", f.threads, "CPU threads (0: OMP_NUM_THREADS, else every core)")->type_name("N")
      ->check(CLI::NonNegativeNumber);
  app_.add_option("--steps", f.steps, "optimizer steps (0: the recipe's default)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  app_.add_option("--minutes", f.minutes, "training time budget in minutes (0: no limit)")->type_name("M")
      ->check(CLI::NonNegativeNumber);
  app_.add_option("--device", f.device, "where to compute")->check(CLI::IsMember({"cpu", "cuda"}));
  app_.add_option("--out", f.out, "output folder: metrics.jsonl, checkpoint (empty: no files)")->type_name("DIR");
  app_.add_flag("--save", f.save, "save a checkpoint (ckpt.safetensors, tokenizer.json) into --out at the end "
                "(--out defaults to out/" + name_ + ")");
  app_.add_option("--save-every", f.save_every, "also save every N steps (implies --save)")->type_name("N")
      ->check(CLI::NonNegativeNumber);
  app_.add_option("--resume", f.resume, "resume from a checkpoint file or a folder holding ckpt.safetensors")
      ->type_name("PATH");
  app_.add_flag("--bench", f.bench, "time a fixed number of steps of the default model; print one JSON line");
  app_.add_option("--data", f.data, "the corpus (file or folder)")->type_name("PATH");
  app_.add_option("--log-every", f.log_every, "without a terminal, a progress line every N steps (0: ~5 s)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  app_.add_option("--eval-every", f.eval_every, "validate every N steps (0: the recipe's default)")->type_name("N")
      ->check(CLI::NonNegativeNumber);
  app_.add_option("--stop-after", f.stop_after, "stop after step N as if interrupted; resume later with --resume")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
}

std::string Harness::out_path(const std::string& file) const {
  return flags_.out.empty() ? std::string() : (std::filesystem::path(flags_.out) / file).string();
}

bool Harness::interrupted() { return g_interrupted != 0; }

void Harness::apply_flags() {
  CommonFlags& f = flags_;
  if (f.device == "cuda") {
    TG_CHECK(cuda::is_built(), "--device cuda: this build of tapegrad has no CUDA backend (it was built for the CPU "
                               "only); use --device cpu");
    TG_CHECK(cuda::is_available(), "--device cuda: no CUDA backend usable here: {}; use --device cpu",
             cuda::unavailable_reason());
    // No recipe moves its model to the GPU yet: the fused kernels they rely on are CPU-only (docs/cuda.md).
    TG_ERROR("--device cuda: {} does not run on CUDA yet; use --device cpu", name_);
  }
  if (f.threads > 0) set_num_threads(f.threads);
  manual_seed(f.seed);
  if (f.bench) return;  // no files in --bench mode
  if (f.save_every > 0) f.save = true;
  if (f.save && f.out.empty()) f.out = "out/" + name_;
  if (!f.out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(f.out, ec);
    TG_CHECK(!ec && std::filesystem::is_directory(f.out), "--out {}: cannot create the folder ({})", f.out,
             ec ? ec.message() : "a file of that name exists");
  }
}

namespace {
// OpenMP's threads spin while they wait, by default. On a machine where another process holds a core, every
// parallel region then costs a scheduler time slice: the char-lstm step (hundreds of small regions) ran 5x slower
// on 2 threads than on 1, and at full speed with OMP_WAIT_POLICY=PASSIVE. libgomp reads the policy once, when it
// loads, so a recipe started without one sets it and restarts itself, once, before doing anything else.
void prefer_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: then carry on with the default policy
}
}  // namespace

int Harness::main(int argc, char** argv, const std::function<void()>& body) {
  prefer_passive_openmp(argv);
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);  // prints help (exit 0) or the problem and "Run with --help" (non-zero)
  }
  try {
    apply_flags();
    std::signal(SIGINT, on_sigint);
    body();
    std::signal(SIGINT, SIG_DFL);
  } catch (const std::exception& e) {
    std::signal(SIGINT, SIG_DFL);
    Progress::close_line();
    std::fflush(stdout);
    std::fprintf(stderr, "%s: error: %s\n", name_.c_str(), e.what());
    return 1;
  }
  return 0;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void run_bench(const std::string& recipe, int64_t steps, int64_t warmup, double tokens_per_step,
               const std::function<void()>& step) {
  TG_CHECK(steps >= 1, "--bench: the number of timed steps must be >= 1, got {}", steps);
  for (int64_t i = 0; i < warmup; ++i) step();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
  std::printf("{\"recipe\": \"%s\", \"tokens_per_s\": %.1f, \"ms_per_step\": %.3f, \"peak_rss_mb\": %.1f, "
              "\"steps\": %lld, \"threads\": %d}\n",
              recipe.c_str(), tokens_per_step / dt, dt * 1e3, peak_rss_mb(), static_cast<long long>(steps),
              get_num_threads());
  std::fflush(stdout);
}

}  // namespace tg::recipes
