// tg_bench WORKLOAD [--threads N] [--steps N]: runs one standard workload and prints one JSON line with the
// fields torch_peer.py prints for the same workload, so tapegrad and PyTorch can be compared on identical work.
// Workloads: sgemm-N (any N; 256, 512, 1024 are the standard ones), overhead.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "tapegrad.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Same protocol as torch_peer.py: 3 warm-up products, then the mean over `reps`.
std::string bench_sgemm(int64_t n, int reps) {
  tg::manual_seed(0);
  tg::Tensor a = tg::randn({n, n}), b = tg::randn({n, n});
  for (int i = 0; i < 3; ++i) tg::matmul(a, b);
  double t = now();
  for (int i = 0; i < reps; ++i) tg::matmul(a, b);
  double dt = (now() - t) / reps;
  return fmt::format("\"ms_per_step\": {:.4f}, \"gflops\": {:.2f}", dt * 1e3, 2.0 * n * n * n / dt / 1e9);
}

// 10,000 chained tiny ops with autograd on (x = x * 1.0001 + 0.0001 on 16 floats), forward and backward.
std::string bench_overhead(int steps) {
  const int n = 10000;
  auto run = [&] {
    tg::Tensor x0 = tg::ones({16}).requires_grad_();
    tg::Tensor x = x0;
    for (int i = 0; i < n / 2; ++i) x = x * 1.0001 + 0.0001;
    x.sum().backward();
  };
  run();
  int reps = std::max(1, steps / 10);
  double t = now();
  for (int i = 0; i < reps; ++i) run();
  double dt = (now() - t) / reps;
  return fmt::format("\"ms_per_step\": {:.4f}, \"us_per_op\": {:.4f}, \"tokens_per_s\": {:.1f}", dt * 1e3,
                     dt / n * 1e6, n / dt);
}

int usage() {
  std::fprintf(stderr, "usage: tg_bench WORKLOAD [--threads N] [--steps N]\nworkloads: sgemm-N, overhead\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) return usage();
  std::string workload = argv[1];
  int threads = 2, steps = 20;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--threads" || a == "--steps") && i + 1 < argc) {
      int v = std::atoi(argv[++i]);
      if (v <= 0) return usage();
      (a == "--threads" ? threads : steps) = v;
    } else {
      return usage();
    }
  }
  try {
    tg::set_num_threads(threads);
    std::string fields;
    if (workload.rfind("sgemm-", 0) == 0) fields = bench_sgemm(std::stoll(workload.substr(6)), steps);
    else if (workload == "overhead") fields = bench_overhead(steps);
    else {
      std::fprintf(stderr, "tg_bench: unknown workload '%s'\n", workload.c_str());
      return usage();
    }
    std::printf("{%s, \"workload\": \"%s\", \"threads\": %d, \"peak_rss_mb\": %.1f, \"peer\": \"tapegrad\"}\n",
                fields.c_str(), workload.c_str(), threads, peak_rss_mb());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tg_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
