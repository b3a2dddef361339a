// The mixture-of-experts chapter (docs/moe.md) as a program: a Switch (top-1) layer's routing and statistics, the
// load-balancing loss near 1 for a near-uniform router, token dropping when the capacity factor is small, a few
// training steps in which the auxiliary loss keeps the experts balanced, and the dense-to-sparse gate annealed
// from dense to top-k. Exits non-zero if any check fails.
#include <cmath>
#include <cstdio>

#include "tapegrad.h"

namespace nn = tg::nn;
namespace F = tg::nn::functional;
using tg::Tensor;

static int failures = 0;
static void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  failures += !ok;
}

static void print_load(const char* what, const nn::RouterStats& st) {
  std::printf("%-24s capacity %2lld  asked / kept per expert:", what, static_cast<long long>(st.capacity));
  for (size_t e = 0; e < st.tokens_per_expert.size(); ++e)
    std::printf(" %2lld/%2lld", static_cast<long long>(st.assigned_per_expert[e]),
                static_cast<long long>(st.tokens_per_expert[e]));
  std::printf("  dropped %.3f  k %.2f\n", st.dropped_fraction, st.mean_experts_per_token);
}

int main() {
  tg::manual_seed(0);
  const int64_t C = 16, E = 4;

  // 1. Switch routing: every token to its top expert, at most capacity = ceil(1.25 * 64 / 4) = 20 per expert.
  nn::MoE moe({.d_model = C, .d_hidden = 32, .n_experts = E, .top_k = 1, .capacity_factor = 1.25});
  Tensor x = tg::randn({4, 16, C});  // 64 tokens
  Tensor y = moe.forward(x);
  print_load("top-1, capacity 1.25", moe.stats());
  check(y.sizes() == x.sizes(), "the layer keeps the input's shape");
  check(moe.stats().capacity == 20, "capacity = ceil(capacity_factor * k * tokens / experts)");
  // The router starts with small weights (Switch's init), so probabilities are near 1/E and f_i P_i sums to ~1/E.
  check(std::abs(moe.aux_loss().item<double>() - 1.0) < 0.1, "aux loss ~ 1 for a near-uniform router");

  // 2. A small capacity drops tokens: their output rows are exactly zero (a residual would carry them).
  nn::MoE tight({.d_model = C, .d_hidden = 32, .n_experts = E, .top_k = 2, .capacity_factor = 0.5});
  Tensor yt = tight.forward(x).reshape({-1, C});
  print_load("top-2, capacity 0.5", tight.stats());
  auto routes = tight.routes().to_vector<int64_t>();
  bool zero_rows_ok = true;
  for (int64_t n = 0; n < 64; ++n)
    if (routes[2 * n] < 0 && routes[2 * n + 1] < 0)
      zero_rows_ok &= tg::max(tg::abs(yt.select(0, n))).item<double>() == 0.0;
  check(tight.stats().dropped_fraction > 0 && zero_rows_ok, "dropped tokens get a zero expert output");

  // 3. Train y ~ a target with a skewed router; the aux loss (weight 0.1 here, to show it quickly) pulls the load back towards balance.
  {
    tg::NoGradGuard g;
    moe.router->weight.narrow(0, 0, 1).add_(x.reshape({-1, C}).mean(0, true), 4.0);  // expert 0 favoured
  }
  Tensor target = tg::randn({4, 16, C});
  tg::optim::Adam opt(moe.parameters(), {.lr = 1e-2});
  moe.forward(x);
  print_load("skewed router, step 0", moe.stats());
  const double aux0 = moe.aux_loss().item<double>();
  for (int step = 0; step < 100; ++step) {
    Tensor out = moe.forward(x);
    Tensor loss = F::mse_loss(x + out, target) + 0.1 * moe.aux_loss() + 1e-3 * moe.z_loss();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  moe.forward(x);
  print_load("after 100 steps", moe.stats());
  std::printf("aux loss %.3f -> %.3f\n", aux0, moe.aux_loss().item<double>());
  check(moe.aux_loss().item<double>() < aux0, "the load-balancing loss fell");

  // 4. Dense-to-sparse: a high temperature routes each token to every expert, a low one to its top-k only.
  moe.options.capacity_factor = 0;  // unlimited, to see the gate alone
  double k_first = 0, k_last = 0;
  for (int64_t step = 0; step <= 100; step += 50) {
    double tau = F::dts_temperature(step, 100, 20.0, 0.01);
    moe.set_gate_temperature(tau);
    moe.forward(x);
    std::printf("tau %7.3f -> experts per token %.2f\n", tau, moe.stats().mean_experts_per_token);
    if (step == 0) k_first = moe.stats().mean_experts_per_token;
    k_last = moe.stats().mean_experts_per_token;
  }
  check(k_first > 3.5 && k_last < 1.5, "the annealed gate goes from dense to top-1");
  moe.eval();
  moe.forward(x);
  check(moe.stats().mean_experts_per_token == 1.0, "eval() routes with plain top-k");
  return failures ? 1 : 0;
}
