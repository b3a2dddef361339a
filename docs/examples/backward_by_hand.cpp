// The three-op example of docs/autograd.md, run for real: a = 2, b = 3, c = a * b, d = c + a, e = exp(d).
// It prints the tape, runs backward, and checks the gradients against the ones derived by hand:
//   de/da = exp(d) * (b + 1) = 4 e^8,   de/db = exp(d) * a = 2 e^8.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

#include "tapegrad.h"

namespace {
int failures = 0;
void expect_near(const char* what, double got, double want) {
  bool ok = std::abs(got - want) <= 1e-9 * std::abs(want);
  std::printf("%-8s = %.6f (by hand: %.6f) %s\n", what, got, want, ok ? "ok" : "MISMATCH");
  failures += !ok;
}
}  // namespace

int main() {
  // Leaves: 0-d float64 tensors that require grad.
  tg::Tensor a = tg::scalar_tensor(2.0, tg::kFloat64).requires_grad_();
  tg::Tensor b = tg::scalar_tensor(3.0, tg::kFloat64).requires_grad_();

  tg::Tensor c = a * b;   // node "mul": saves a and b (it needs each to differentiate w.r.t. the other)
  tg::Tensor d = c + a;   // node "add": saves nothing (its local derivatives are 1)
  tg::Tensor e = d.exp(); // node "exp": saves its own output (d exp(d)/dd = exp(d))

  std::cout << "tape, in recording order:\n" << tg::autograd::tape_string();
  std::cout << "e = " << e << "\n";

  // Each non-leaf points at the node that made it; leaves have none.
  if (!a.is_leaf() || c.is_leaf() || c.grad_fn()->name != "mul" || d.grad_fn()->name != "add" ||
      e.grad_fn()->name != "exp") {
    std::cerr << "unexpected graph\n";
    return 1;
  }
  // Recording order is seq order: backward will run exp, then add, then mul.
  if (!(c.grad_fn()->seq < d.grad_fn()->seq && d.grad_fn()->seq < e.grad_fn()->seq)) {
    std::cerr << "unexpected seq order\n";
    return 1;
  }
  std::cout << "saved tensors: mul " << c.grad_fn()->saved.size() << ", add " << d.grad_fn()->saved.size()
            << ", exp " << e.grad_fn()->saved.size() << "\n";
  if (c.grad_fn()->saved.size() != 2 || d.grad_fn()->saved.size() != 0 || e.grad_fn()->saved.size() != 1) return 1;

  e.backward();  // seeds de/de = 1 and walks the tape backwards

  const double e8 = std::exp(8.0);
  expect_near("e", e.item<double>(), e8);
  expect_near("de/da", a.grad().item<double>(), 4 * e8);
  expect_near("de/db", b.grad().item<double>(), 2 * e8);
  // c and d are not leaves: backward does not store .grad() for them.
  if (c.grad().defined() || d.grad().defined()) {
    std::cerr << "non-leaves should not get .grad()\n";
    return 1;
  }
  // Without retain_graph the nodes freed their saved tensors; the tape now marks them [freed].
  std::cout << "tape after backward:\n" << tg::autograd::tape_string();
  if (tg::autograd::tape_string().find("[freed]") == std::string::npos) return 1;
  return failures == 0 ? 0 : 1;
}
