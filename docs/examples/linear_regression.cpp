// Fits y = 3x + 2 by plain gradient descent, with core ops only (no nn module, no optimizer):
// forward with ops, loss.backward(), then an in-place update under tg::NoGradGuard and zero_grad().
#include <cmath>
#include <cstdio>

#include "tapegrad.h"

using tg::Tensor;

int main() {
  tg::manual_seed(0);
  // Data: 128 points on [-1, 1] with a little noise.
  Tensor x = tg::linspace(-1, 1, 128);
  Tensor y = x * 3.0 + 2.0 + tg::randn({128}) * 0.05;

  // Parameters: 0-d float32 leaves that require grad.
  Tensor w = tg::zeros({}).requires_grad_();
  Tensor b = tg::zeros({}).requires_grad_();

  const double lr = 0.3;
  double loss_value = 0;
  for (int step = 0; step < 300; ++step) {
    Tensor pred = x * w + b;                 // w and b broadcast over x's 128 elements
    Tensor loss = ((pred - y) * (pred - y)).mean();
    loss.backward();                         // fills w.grad() and b.grad() (0-d, like w and b)
    {
      tg::NoGradGuard no_grad;               // the update itself must not be recorded
      w.add_(w.grad(), -lr);                 // w -= lr * dloss/dw
      b.add_(b.grad(), -lr);
    }
    w.zero_grad();                           // gradients accumulate: drop them before the next step
    b.zero_grad();
    loss_value = loss.item<double>();
    if (step % 50 == 0) std::printf("step %3d  loss %.5f  w %.4f  b %.4f\n", step, loss_value, w.item<double>(),
                                    b.item<double>());
  }
  double wf = w.item<double>(), bf = b.item<double>();
  std::printf("fit: y = %.4f x + %.4f  (loss %.5f)\n", wf, bf, loss_value);

  // The noise is 0.05: the fit must be close, and the loss near its variance (0.0025).
  bool ok = std::abs(wf - 3) < 0.05 && std::abs(bf - 2) < 0.05 && loss_value < 0.005;
  std::printf("%s\n", ok ? "fit ok" : "FIT FAILED");
  return ok ? 0 : 1;
}
