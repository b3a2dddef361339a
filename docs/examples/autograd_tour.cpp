// The autograd features of docs/autograd.md, each checked: NoGradGuard, detach, retain_graph and accumulation,
// autograd::grad, gradients through broadcasting and a tensor used twice, and the in-place version check.
#include <cmath>
#include <iostream>
#include <string>

#include "tapegrad.h"

using tg::Tensor;

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
  std::cout << (ok ? "  ok   " : "  FAIL ") << what << "\n";
  failures += !ok;
}
double val(const Tensor& t) { return t.item<double>(); }
// Runs f, expecting a tg::Error whose message contains `needle`.
template <class F> void expect_error(F f, const std::string& needle, const std::string& what) {
  try {
    f();
  } catch (const tg::Error& e) {
    std::cout << "  (" << e.what() << ")\n";
    check(std::string(e.what()).find(needle) != std::string::npos, what);
    return;
  }
  check(false, what + " (no error thrown)");
}
}  // namespace

int main() {
  auto scalar = [](double v) { return tg::scalar_tensor(v, tg::kFloat64).requires_grad_(); };

  // ---- recording happens only when an input requires grad and grad mode is on
  {
    Tensor x = scalar(3.0);
    Tensor plain = tg::scalar_tensor(3.0, tg::kFloat64);
    check((plain * plain).grad_fn() == nullptr, "no input requires grad: nothing recorded");
    check((x * plain).grad_fn() != nullptr, "one input requires grad: recorded");
    Tensor y;
    {
      tg::NoGradGuard no_grad;
      y = x * x;
    }
    check(!y.requires_grad() && y.grad_fn() == nullptr, "NoGradGuard: nothing recorded");
    Tensor z = x.detach() * x;  // detach(): same data, no history
    z.backward();
    check(val(x.grad()) == 3.0, "detach: d(stop(x) * x)/dx = x = 3");
  }

  // ---- a tensor used twice: contributions are summed (micrograd's b = a + a; c = b * b)
  {
    Tensor a = scalar(-4.0);
    Tensor b = a + a;
    Tensor c = b * b;  // c = 4a^2, dc/da = 8a = -32
    c.backward();
    check(val(a.grad()) == -32.0, "a used twice: dc/da = 8a = -32");
  }

  // ---- gradients through broadcasting are summed back to the input's shape
  {
    Tensor w = tg::ones({3}, tg::kFloat64).requires_grad_();
    Tensor x = tg::ones({4, 3}, tg::kFloat64);
    (x * w).sum().backward();
    check(w.grad().sizes() == tg::Shape{3} && w.grad().to_vector<double>() == std::vector<double>{4, 4, 4},
          "broadcast [3] over [4, 3]: grad summed over the 4 rows");
  }

  // ---- retain_graph and accumulation into .grad()
  {
    Tensor x = scalar(2.0);
    Tensor y = x * x * x;                          // dy/dx = 3x^2 = 12
    y.backward({}, /*retain_graph=*/true);
    y.backward();                                  // accumulates: 12 + 12
    check(val(x.grad()) == 24.0, "two backward passes accumulate into .grad(): 24");
    expect_error([&] { y.backward(); }, "retain_graph=true", "a third backward on a freed graph is an error");
    x.zero_grad();
    check(!x.grad().defined(), "zero_grad() drops .grad()");
  }

  // ---- autograd::grad: gradients of outputs w.r.t. chosen inputs, without touching .grad()
  {
    Tensor x = scalar(2.0);
    Tensor h = x * x;        // a non-leaf can be an input too
    Tensor y = h.exp();      // dy/dh = exp(h) = e^4, dy/dx = 2x e^4
    auto g = tg::autograd::grad({y}, {x, h});
    check(std::abs(val(g[0]) - 4 * std::exp(4.0)) < 1e-9 && std::abs(val(g[1]) - std::exp(4.0)) < 1e-9,
          "autograd::grad({y}, {x, h}) = {2x e^4, e^4}");
    check(!x.grad().defined(), "autograd::grad leaves .grad() alone");
    Tensor unused = scalar(1.0);
    Tensor y2 = x * 2.0;
    expect_error([&] { tg::autograd::grad({y2}, {unused}); }, "allow_unused", "an unused input is an error...");
    Tensor y3 = x * 2.0;
    auto g2 = tg::autograd::grad({y3}, {unused}, {}, false, /*allow_unused=*/true);
    check(!g2[0].defined(), "...or an undefined tensor with allow_unused");
  }

  // ---- a non-scalar output needs an explicit gradient
  {
    Tensor x = tg::ones({3}, tg::kFloat64).requires_grad_();
    Tensor y = x * 2.0;
    expect_error([&] { y.backward(); }, "single-element", "backward() of a [3] output without a gradient");
    y.backward(tg::tensor(std::vector<double>{1, 10, 100}));
    check(x.grad().to_vector<double>() == std::vector<double>{2, 20, 200}, "backward(v) gives v^T J");
  }

  // ---- in-place writes and saved tensors
  {
    Tensor x = tg::ones({3}, tg::kFloat64).requires_grad_();
    expect_error([&] { x.mul_(2.0); }, "in-place operation on a tensor that requires grad",
                 "in-place on a tensor that requires grad (grad mode on) is refused");
    {
      tg::NoGradGuard no_grad;
      x.mul_(2.0);  // allowed here: this is how optimizers update parameters
    }
    Tensor s = tg::full({3}, 2.0, tg::kFloat64);  // does not require grad
    Tensor y = (x * s).sum();                     // mul saves s (it needs s for dy/dx)
    s.mul_(10.0);                                 // bumps s's version counter
    expect_error([&] { y.backward(); }, "modified by an in-place operation",
                 "backward notices that a saved tensor changed");
  }

  // ---- an op without a backward formula is an error, never a silent zero
  {
    Tensor x = tg::ones({2}, tg::kFloat64).requires_grad_();
    Tensor s = tg::sign(x);  // sign is documented as not differentiable: it records nothing
    check(!s.requires_grad(), "sign(x) does not require grad");
  }

  std::cout << (failures ? "FAILED\n" : "all checks passed\n");
  return failures == 0 ? 0 : 1;
}
