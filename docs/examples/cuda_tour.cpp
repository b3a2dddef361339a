// The example of docs/cuda.md: a small forward and backward on the GPU, checked against the same computation on
// the CPU. Where no GPU is usable it prints why and checks that asking for one is a clear tg::Error.
#include <cmath>
#include <cstdio>

#include "backends/cuda.h"
#include "tapegrad.h"

int main() {
  if (!tg::cuda::is_available()) {
    std::printf("no GPU: %s\n", tg::cuda::unavailable_reason().c_str());
    try {
      (void)tg::ones({2}).to(tg::Device::cuda());
    } catch (const tg::Error& e) {
      std::printf("as expected, a CUDA tensor is an error here: %s\n", e.what());
      return 0;
    }
    std::printf("FAIL: a CUDA tensor without a GPU did not raise tg::Error\n");
    return 1;
  }
  tg::manual_seed(0);
  tg::Tensor w_cpu = tg::randn({256, 256}), x_cpu = tg::randn({64, 256});
  auto run = [&](tg::Device d) {
    tg::Tensor w = w_cpu.to(d).requires_grad_();
    tg::Tensor loss = tg::matmul(x_cpu.to(d), w).tanh().sum();
    loss.backward();  // w.grad() lives where w does
    return std::make_pair(loss.item<double>(), w.grad().to(tg::Device::cpu()));
  };
  auto [l_cpu, g_cpu] = run(tg::Device::cpu());
  auto [l_gpu, g_gpu] = run(tg::Device::cuda());
  const double dg = tg::amax(tg::abs(tg::sub(g_cpu, g_gpu)), {}, false).item<double>();
  std::printf("loss cpu %.6f cuda %.6f, max |grad difference| %.2e\n", l_cpu, l_gpu, dg);
  const auto stats = tg::cuda::memory_stats();
  std::printf("cudaMalloc calls %lld, cache hits %lld\n", static_cast<long long>(stats.device_allocs),
              static_cast<long long>(stats.cache_hits));
  return std::abs(l_cpu - l_gpu) < 1e-2 * std::abs(l_cpu) + 1e-3 && dg < 1e-3 ? 0 : 1;
}
