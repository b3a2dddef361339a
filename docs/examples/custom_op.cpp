// A differentiable op defined outside the library with tg::autograd::Function, then gradchecked.
//
//   hypot(a, b) = sqrt(a^2 + b^2 + eps)       d/da = a / hypot,   d/db = b / hypot
//
// forward runs with recording off and may use any ops (or raw loops); backward gets the gradient of the output
// and returns one gradient per Tensor argument of forward, in order. Non-tensor arguments (eps) are allowed and
// can be kept in ctx.saved_data.
#include <any>
#include <iostream>
#include <string>

#include "tapegrad.h"

using tg::Tensor;
using tg::autograd::Context;

struct Hypot : tg::autograd::Function<Hypot> {
  // The name the tape shows. (Give every Function a name(): see docs/autograd.md.)
  static const char* name() { return "hypot"; }

  static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b, double eps) {
    Tensor r = tg::sqrt(a * a + b * b + eps);  // a and b broadcast like any binary op
    ctx.save_for_backward({a, b, r});          // saving the output too is fine: it is stored without history
    ctx.saved_data["eps"] = eps;               // not needed by this backward; shows how to keep a non-tensor value
    return r;
  }

  static std::vector<Tensor> backward(Context& ctx, const Tensor& grad) {
    const Tensor& a = ctx.saved()[0];
    const Tensor& b = ctx.saved()[1];
    const Tensor& r = ctx.saved()[2];
    // Gradients must have their input's shape: undo broadcasting by summing over the broadcast dims.
    Tensor ga = tg::autograd::sum_to(grad * a / r, a.sizes());
    Tensor gb = tg::autograd::sum_to(grad * b / r, b.sizes());
    return {ga, gb};
  }
};

Tensor hypot(const Tensor& a, const Tensor& b, double eps = 1e-12) { return Hypot::apply(a, b, eps); }

int main() {
  tg::manual_seed(1);
  // gradcheck wants float64 leaves that require grad. b broadcasts over a's rows.
  Tensor a = tg::randn({3, 4}, tg::kFloat64).requires_grad_();
  Tensor b = tg::randn({4}, tg::kFloat64).requires_grad_();

  Tensor y = hypot(a, b);
  std::cout << "hypot(a, b) = " << y << "\n";
  std::cout << "tape:\n" << tg::autograd::tape_string();
  if (y.grad_fn() == nullptr || y.grad_fn()->name != "hypot") {
    std::cerr << "hypot was not recorded\n";
    return 1;
  }

  // The forward result against the same formula computed with built-in ops.
  Tensor ref = tg::sqrt(a * a + b * b + 1e-12);
  if (!tg::allclose(y, ref, 1e-12, 1e-12)) {
    std::cerr << "forward mismatch\n";
    return 1;
  }

  // Finite differences (central, float64) against our backward, for every element of a and b.
  std::string report;
  bool ok = tg::gradcheck([](const std::vector<Tensor>& in) { return hypot(in[0], in[1]); }, {a, b}, {}, &report);
  std::cout << "gradcheck(hypot): " << (ok ? "passed" : report) << "\n";
  if (!ok) return 1;

  // And the same op used inside a larger expression, composed with built-in ops: sum(hypot(a, b) * a).
  ok = tg::gradcheck([](const std::vector<Tensor>& in) { return (hypot(in[0], in[1]) * in[0]).sum(); }, {a, b}, {},
                     &report);
  std::cout << "gradcheck(sum(hypot(a, b) * a)): " << (ok ? "passed" : report) << "\n";
  return ok ? 0 : 1;
}
