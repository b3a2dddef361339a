// The state-space tour of docs/ssm.md: the selective scan against its recurrence written out, Mamba's step API
// equal to its parallel forward, and S4D as convolution and as recurrence. Exits non-zero if any check fails.
#include <cmath>
#include <cstdio>
#include <vector>

#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;

static double max_diff(const Tensor& a, const Tensor& b) { return tg::max(tg::abs(a - b)).item<double>(); }

int main() {
  tg::manual_seed(0);
  int failures = 0;
  auto check = [&](const char* what, double diff, double tol) {
    std::printf("%-52s max |diff| = %.2e\n", what, diff);
    if (!(diff <= tol)) ++failures;
  };

  // 1. The selective scan: h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t, y_t = <C_t, h_t> + D u_t.
  const int64_t Bt = 2, L = 6, E = 3, N = 4;
  Tensor u = tg::randn({Bt, L, E}, tg::kFloat64), delta = tg::softplus(tg::randn({Bt, L, E}, tg::kFloat64));
  Tensor A = -tg::exp(tg::randn({E, N}, tg::kFloat64)), B = tg::randn({Bt, L, N}, tg::kFloat64),
         C = tg::randn({Bt, L, N}, tg::kFloat64), D = tg::randn({E}, tg::kFloat64);
  Tensor y = F::selective_scan(u, delta, A, B, C, D);
  check("fused selective scan vs the composed recurrence", max_diff(y, F::selective_scan_ref(u, delta, A, B, C, D)),
        1e-12);

  // 2. Mamba: the parallel forward over a sequence and the step API, one token at a time, agree.
  tg::nn::Mamba mamba({.d_model = 8, .d_state = 4}, tg::kFloat64);
  Tensor x = tg::randn({2, 10, 8}, tg::kFloat64);
  Tensor parallel = mamba.forward(x);
  tg::nn::MambaState state = mamba.initial_state(2);
  std::vector<Tensor> steps;
  for (int64_t t = 0; t < 10; ++t) steps.push_back(mamba.step(x.select(1, t), state));
  std::printf("Mamba output: max |y| = %.3f\n", tg::max(tg::abs(parallel)).item<double>());
  check("Mamba: step() vs forward()", max_diff(tg::stack(steps, 1), parallel), 1e-12);

  // 3. S4D: the convolution with the Vandermonde kernel (by FFT) equals the recurrence.
  tg::nn::S4D s4d({.d_model = 8, .d_state = 16}, tg::kFloat64);
  check("S4D: convolution vs recurrence", max_diff(s4d.forward(x), s4d.forward_recurrent(x)), 1e-12);
  Tensor k = s4d.kernel(10);
  std::printf("S4D kernel of channel 0: ");
  for (double v : k.select(0, 0).select(0, 0).to_vector<double>()) std::printf("%.3f ", v);
  std::printf("\n");
  return failures ? 1 : 0;
}
