// Elementwise unary ops: forward entry (argument checks, kernel call) and backward formula side by side.
// Kernels are in backends/cpu/unary.cpp; derivative kernels (GeluErfGrad, ...) keep backward one pass.
#include "autograd/functions/common.h"

namespace tg {

using autograd::Node;

namespace {

// Runs a unary kernel. Math ops promote integer input to float32 as PyTorch does; `numeric` ops keep the dtype.
Tensor run_unary(const char* name, UnaryOp op, const Tensor& x, bool numeric = false, double p0 = 0, double p1 = 0) {
  detail::check_defined(name, x);
  Tensor in = x;
  if (!numeric && !is_floating(x.dtype())) in = x.to(kFloat32);
  TG_CHECK(in.dtype() != kBool, "{}: not supported for bool tensors", name);
  Tensor out = empty(in.sizes(), in.options());
  backend_for(in).unary(op, in, out, p0, p1);
  return out;
}

// Records out = f(x) with backward grad * d(x), where d is computed from the saved tensor (x or out).
template <class D> Tensor with_grad(const char* name, const Tensor& x, Tensor out, bool save_out, D d) {
  if (autograd::needs_grad({x}))
    autograd::record(name, out, {x}, {save_out ? out : x}, [d](const Tensor& g, const Node& n) {
      return std::vector<Tensor>{d(g, n.saved_tensor(0))};
    });
  return out;
}

Tensor derivative(UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
  Tensor out = empty(x.sizes(), x.options());
  backend_for(x).unary(op, x, out, p0, p1);
  return out;
}

}  // namespace

Tensor neg(const Tensor& x) {
  return with_grad("neg", x, run_unary("neg", UnaryOp::Neg, x, true), false,
                   [](const Tensor& g, const Tensor&) { return neg(g); });
}
Tensor abs(const Tensor& x) {
  return with_grad("abs", x, run_unary("abs", UnaryOp::Abs, x, true), false,
                   [](const Tensor& g, const Tensor& x) { return g * sign(x); });
}
Tensor sign(const Tensor& x) { return run_unary("sign", UnaryOp::Sign, x, true); }
Tensor exp(const Tensor& x) {
  return with_grad("exp", x, run_unary("exp", UnaryOp::Exp, x), true, [](const Tensor& g, const Tensor& y) { return g * y; });
}
Tensor log(const Tensor& x) {
  return with_grad("log", x, run_unary("log", UnaryOp::Log, x), false, [](const Tensor& g, const Tensor& x) { return g / x; });
}
Tensor sqrt(const Tensor& x) {
  return with_grad("sqrt", x, run_unary("sqrt", UnaryOp::Sqrt, x), true,
                   [](const Tensor& g, const Tensor& y) { return g / (y * 2.0); });
}
Tensor rsqrt(const Tensor& x) {
  return with_grad("rsqrt", x, run_unary("rsqrt", UnaryOp::Rsqrt, x), true,
                   [](const Tensor& g, const Tensor& y) { return g * (y * y * y) * -0.5; });
}
Tensor sin(const Tensor& x) {
  return with_grad("sin", x, run_unary("sin", UnaryOp::Sin, x), false, [](const Tensor& g, const Tensor& x) { return g * cos(x); });
}
Tensor cos(const Tensor& x) {
  return with_grad("cos", x, run_unary("cos", UnaryOp::Cos, x), false,
                   [](const Tensor& g, const Tensor& x) { return -(g * sin(x)); });
}
Tensor tanh(const Tensor& x) {
  return with_grad("tanh", x, run_unary("tanh", UnaryOp::Tanh, x), true,
                   [](const Tensor& g, const Tensor& y) { return g * rsub(y * y, 1.0); });
}
Tensor sigmoid(const Tensor& x) {
  return with_grad("sigmoid", x, run_unary("sigmoid", UnaryOp::Sigmoid, x), true,
                   [](const Tensor& g, const Tensor& y) { return g * y * rsub(y, 1.0); });
}
Tensor relu(const Tensor& x) {
  return with_grad("relu", x, run_unary("relu", UnaryOp::Relu, x, true), true,
                   [](const Tensor& g, const Tensor& y) { return where(gt(y, 0.0), g, 0.0); });
}
Tensor gelu(const Tensor& x, const std::string& approximate) {
  TG_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\", got \"{}\"",
           approximate);
  bool t = approximate == "tanh";
  return with_grad("gelu", x, run_unary("gelu", t ? UnaryOp::GeluTanh : UnaryOp::GeluErf, x), false,
                   [t](const Tensor& g, const Tensor& x) {
                     return g * derivative(t ? UnaryOp::GeluTanhGrad : UnaryOp::GeluErfGrad, x);
                   });
}
Tensor silu(const Tensor& x) {
  return with_grad("silu", x, run_unary("silu", UnaryOp::Silu, x), false,
                   [](const Tensor& g, const Tensor& x) { return g * derivative(UnaryOp::SiluGrad, x); });
}
Tensor softplus(const Tensor& x, double beta, double threshold) {
  TG_CHECK(beta != 0, "softplus: beta must be non-zero");
  return with_grad("softplus", x, run_unary("softplus", UnaryOp::Softplus, x, false, beta, threshold), false,
                   [beta, threshold](const Tensor& g, const Tensor& x) {
                     return g * derivative(UnaryOp::SoftplusGrad, x, beta, threshold);
                   });
}
Tensor square(const Tensor& x) { return mul(x, x); }
Tensor pow(const Tensor& x, double e) {
  if (e == 2.0) return mul(x, x);
  return with_grad("pow", x, run_unary("pow", UnaryOp::PowScalar, x, false, e), false,
                   [e](const Tensor& g, const Tensor& x) { return g * pow(x, e - 1.0) * e; });
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  TG_CHECK(!(lo > hi), "clamp: min {} is greater than max {}", lo, hi);
  return with_grad("clamp", x, run_unary("clamp", UnaryOp::Clamp, x, true, lo, hi), false,
                   [lo, hi](const Tensor& g, const Tensor& x) { return g * derivative(UnaryOp::ClampMask, x, lo, hi); });
}
Tensor clamp_min(const Tensor& x, double lo) { return clamp(x, lo, std::numeric_limits<double>::infinity()); }
Tensor clamp_max(const Tensor& x, double hi) { return clamp(x, -std::numeric_limits<double>::infinity(), hi); }
Tensor logical_not(const Tensor& x) {
  detail::check_defined("logical_not", x);
  Tensor out = empty(x.sizes(), x.options().dtype(kBool));
  backend_for(x).unary(UnaryOp::LogicalNot, x, out, 0, 0);
  return out;
}

}  // namespace tg
