// The recurrent-networks chapter (docs/recurrent.md) as a program: the tape of a composed LSTM against the one
// node of the fused layer, the two agreeing; how the gradient reaching the first step shrinks with distance for an
// Elman RNN and for an LSTM; truncated BPTT with a detached state; minGRU's scan against its step-by-step form.
// Exits non-zero if any check fails.
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

static double max_abs_diff(const Tensor& a, const Tensor& b) { return tg::max(tg::abs(a - b)).item<double>(); }

int main() {
  tg::manual_seed(0);

  // 1. BPTT on the tape: the composed reference records every gate of every step; the fused op records one node.
  nn::LSTM fused({.input_size = 8, .hidden_size = 16}), composed({.input_size = 8, .hidden_size = 16, .fused = false});
  auto sd = fused.state_dict();
  composed.load_state_dict(std::map<std::string, Tensor>(sd.begin(), sd.end()));
  Tensor x = tg::randn({20, 4, 8});  // [T, B, I]
  size_t n0 = tg::autograd::tape_size();
  auto [y_ref, s_ref] = composed.forward(x);
  size_t n1 = tg::autograd::tape_size();
  auto [y, s] = fused.forward(x);
  size_t n2 = tg::autograd::tape_size();
  std::printf("tape nodes for 20 steps: composed %zu, fused %zu\n", n1 - n0, n2 - n1);
  check(max_abs_diff(y, y_ref) < 1e-5, "fused LSTM output equals the composed reference");
  y.sum().backward();
  Tensor g_fused = fused.parameters()[1].grad().clone();
  y_ref.sum().backward();
  check(max_abs_diff(g_fused, composed.parameters()[1].grad()) < 1e-4, "and so does dL/dW_hh");

  // 2. Vanishing gradients: |dh_T / dx_0| over T for a tanh RNN and LSTMs of the same size and init scale, one of
  // them with its forget-gate biases at 3 (f = sigma(3) = 0.95 at the start) instead of about 0 (f = 0.5).
  std::printf("\n  T   |dh_T/dx_0| tanh RNN   LSTM        LSTM, forget bias 3\n");
  nn::RNN rnn({.input_size = 8, .hidden_size = 16});
  nn::LSTM remember({.input_size = 8, .hidden_size = 16});
  {
    tg::NoGradGuard g;
    remember.b_ih[0].narrow(0, 16, 16).fill_(3.0);  // gate order i, f, g, o: rows H..2H are the forget gate
    remember.b_hh[0].narrow(0, 16, 16).zero_();
  }
  double rnn_first = 0, rnn_last = 0, rem_last = 0;
  for (int64_t T : {1, 5, 10, 20, 40}) {
    auto grad_norm = [&](auto& m) {
      Tensor xs = tg::randn({T, 1, 8}).requires_grad_();
      Tensor h = std::get<0>(m.forward(xs)).select(0, T - 1);
      h.sum().backward();
      return tg::sqrt(tg::sum(tg::square(xs.grad().select(0, 0)))).template item<double>();
    };
    double gr = grad_norm(rnn), gl = grad_norm(fused), gf = grad_norm(remember);
    if (T == 1) rnn_first = gr;
    rnn_last = gr;
    rem_last = gf;
    std::printf("%3lld   %.3e            %.3e   %.3e\n", static_cast<long long>(T), gr, gl, gf);
  }
  check(rnn_last < 1e-6 * rnn_first, "the tanh RNN's gradient from 40 steps back has all but vanished");
  check(rem_last > 1e3 * rnn_last, "an LSTM that starts out remembering keeps far more of it");

  // 3. Truncated BPTT: chunks of 10 steps, the state carried and detached in between, give the one-pass outputs.
  Tensor long_x = tg::randn({40, 2, 8});
  Tensor full = std::get<0>(fused.forward(long_x));
  std::optional<std::tuple<Tensor, Tensor>> state;
  double worst = 0;
  for (int64_t t0 = 0; t0 < 40; t0 += 10) {
    auto [yc, sc] = fused.forward(long_x.narrow(0, t0, 10), state);
    worst = std::max(worst, max_abs_diff(yc, full.narrow(0, t0, 10)));
    yc.sum().backward();  // reaches back to the start of this chunk only
    state = std::tuple{std::get<0>(sc).detach(), std::get<1>(sc).detach()};
  }
  check(worst < 1e-5, "truncated BPTT with a detached state continues the sequence exactly");

  // 4. minGRU: the log-space parallel scan and the sequential recurrence are the same function.
  nn::MinGRU mg(8);
  Tensor xb = tg::randn({2, 50, 8});
  auto [yp, hp] = mg.forward(xb);
  auto [ys, hs] = mg.forward_sequential(xb);
  std::printf("\nminGRU parallel vs sequential, 50 steps: max |diff| %.2e\n", max_abs_diff(yp, ys));
  check(max_abs_diff(yp, ys) < 1e-4, "minGRU's scan equals its step-by-step form");
  return failures ? 1 : 0;
}
