// Uses the installed headers (<prefix>/include/tapegrad) and library: a tiny gradient, checked.
#include <cstdio>

#include "tapegrad.h"

int main() {
  tg::Tensor w = tg::tensor(std::vector<double>{1.0, -2.0}).requires_grad_();
  tg::Tensor x = tg::tensor(std::vector<double>{3.0, 4.0});
  tg::Tensor loss = (tg::matmul(w, x) - 1.0).pow(2.0);  // (3 - 8 - 1)^2 = 36
  loss.backward();
  auto g = w.grad().to_vector<double>();  // 2 * (-6) * x = [-36, -48]
  bool ok = loss.item<double>() == 36.0 && g[0] == -36.0 && g[1] == -48.0;
  std::printf("consumer: loss %.1f grad [%.1f, %.1f] %s\n", loss.item<double>(), g[0], g[1], ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
