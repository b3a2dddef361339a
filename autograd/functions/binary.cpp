// Elementwise binary ops with NumPy broadcasting and PyTorch type promotion, their backward formulas (gradients
// summed back over broadcast dims with sum_to), where/masked_fill, and comparisons (bool, not differentiable).
#include <cmath>

#include "autograd/functions/common.h"

namespace tg {

using autograd::Node;
using autograd::sum_to;

namespace {

// The dtype an arithmetic op computes in; true division of integers gives float32, as in PyTorch.
DType compute_dtype(BinaryOp op, DType a, DType b) {
  DType t = promote_types(a, b);
  if ((op == BinaryOp::Div || op == BinaryOp::Pow) && !is_floating(t)) t = kFloat32;
  return t;
}

const char* op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                "ne",  "lt",  "le",  "gt",  "ge",  "logical_and", "logical_or"};
  return names[static_cast<int>(op)];
}

Tensor run_binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = op_name(op);
  detail::check_defined(name, a);
  detail::check_defined(name, b);
  detail::check_same_device(name, a, b);
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  DType t = is_comparison(op) ? promote_types(a.dtype(), b.dtype()) : compute_dtype(op, a.dtype(), b.dtype());
  Tensor x = detail::raw_broadcast(a.dtype() == t ? a : a.to(t), shape);
  Tensor y = detail::raw_broadcast(b.dtype() == t ? b : b.to(t), shape);
  Tensor out = empty(shape, a.options().dtype(is_comparison(op) ? kBool : t));
  backend_for(a).binary(op, x, y, out);
  return out;
}

// The dtype of tensor-scalar arithmetic: integer tensors stay integer only for integral scalars.
DType scalar_dtype(BinaryOp op, DType a, double s) {
  if (is_floating(a)) return a;
  if (op == BinaryOp::Div || s != std::floor(s) || !std::isfinite(s)) return kFloat32;
  return a == kBool && !is_comparison(op) ? kInt64 : a;
}

Tensor run_scalar(BinaryOp op, const Tensor& a, double s) {
  const char* name = op_name(op);
  detail::check_defined(name, a);
  DType t = is_comparison(op) ? (is_floating(a.dtype()) ? a.dtype() : (s == std::floor(s) ? a.dtype() : kFloat32))
                              : scalar_dtype(op, a.dtype(), s);
  Tensor x = a.dtype() == t ? a : a.to(t);
  Tensor out = empty(a.sizes(), a.options().dtype(is_comparison(op) ? kBool : t));
  backend_for(a).binary_scalar(op, x, s, out);
  return out;
}

using GradPair = std::vector<Tensor>;

// Records out = op(a, b) with a backward that gives (grad_a, grad_b) before the broadcast reduction.
template <class F> Tensor record2(const char* name, const Tensor& a, const Tensor& b, Tensor out,
                                  std::vector<Tensor> saved, F f) {
  if (autograd::needs_grad({a, b})) {
    bool ra = a.requires_grad(), rb = b.requires_grad();
    autograd::record(name, out, {a, b}, std::move(saved),
                     [f, sa = a.sizes(), sb = b.sizes(), ra, rb](const Tensor& g, const Node& n) {
                       GradPair gr = f(g, n, ra, rb);
                       if (gr[0].defined()) gr[0] = sum_to(gr[0], sa);
                       if (gr[1].defined()) gr[1] = sum_to(gr[1], sb);
                       return gr;
                     });
  }
  return out;
}

// Records out = op(a, scalar) with backward grad -> f(grad, node).
template <class F> Tensor record1(const char* name, const Tensor& a, Tensor out, std::vector<Tensor> saved, F f) {
  if (autograd::needs_grad({a}))
    autograd::record(name, out, {a}, std::move(saved),
                     [f](const Tensor& g, const Node& n) { return std::vector<Tensor>{f(g, n)}; });
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  if (alpha != 1.0) return add(a, mul(b, alpha));
  return record2("add", a, b, run_binary(BinaryOp::Add, a, b), {},
                 [](const Tensor& g, const Node&, bool, bool) { return GradPair{g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  if (alpha != 1.0) return sub(a, mul(b, alpha));
  return record2("sub", a, b, run_binary(BinaryOp::Sub, a, b), {},
                 [](const Tensor& g, const Node&, bool, bool rb) { return GradPair{g, rb ? neg(g) : Tensor()}; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return record2("mul", a, b, run_binary(BinaryOp::Mul, a, b), {a, b}, [](const Tensor& g, const Node& n, bool ra, bool rb) {
    return GradPair{ra ? g * n.saved_tensor(1) : Tensor(), rb ? g * n.saved_tensor(0) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  return record2("div", a, b, run_binary(BinaryOp::Div, a, b), {a, b}, [](const Tensor& g, const Node& n, bool ra, bool rb) {
    Tensor x = n.saved_tensor(0), y = n.saved_tensor(1);
    return GradPair{ra ? g / y : Tensor(), rb ? neg(g * x / (y * y)) : Tensor()};
  });
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::Pow, a, b);
  return record2("pow", a, b, out, {a, b, out}, [](const Tensor& g, const Node& n, bool ra, bool rb) {
    Tensor x = n.saved_tensor(0), y = n.saved_tensor(1), r = n.saved_tensor(2);
    // d/db a^b = a^b log a; 0 where a == 0 and the result is 0, as PyTorch does.
    return GradPair{ra ? g * y * pow(x, y - 1.0) : Tensor(),
                    rb ? where(logical_and(eq(x, 0.0), ge(y, 0.0)), 0.0, g * r * log(x)) : Tensor()};
  });
}

namespace {
// maximum/minimum: the gradient goes to the chosen operand, split in half on ties (PyTorch's rule).
Tensor extremum(BinaryOp op, const Tensor& a, const Tensor& b) {
  return record2(op_name(op), a, b, run_binary(op, a, b), {a, b}, [op](const Tensor& g, const Node& n, bool, bool) {
    Tensor x = n.saved_tensor(0), y = n.saved_tensor(1);
    Tensor tie = eq(x, y), a_wins = op == BinaryOp::Maximum ? gt(x, y) : lt(x, y);
    Tensor half = g * 0.5;
    Tensor ga = where(tie, half, where(a_wins, g, 0.0));
    Tensor gb = where(tie, half, where(a_wins, 0.0, g));
    return GradPair{ga, gb};
  });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::Minimum, a, b); }

Tensor add(const Tensor& a, double b) {
  return record1("add", a, run_scalar(BinaryOp::Add, a, b), {}, [](const Tensor& g, const Node&) { return g; });
}
Tensor sub(const Tensor& a, double b) {
  return record1("sub", a, run_scalar(BinaryOp::Sub, a, b), {}, [](const Tensor& g, const Node&) { return g; });
}
Tensor mul(const Tensor& a, double b) {
  return record1("mul", a, run_scalar(BinaryOp::Mul, a, b), {}, [b](const Tensor& g, const Node&) { return g * b; });
}
Tensor div(const Tensor& a, double b) {
  return record1("div", a, run_scalar(BinaryOp::Div, a, b), {}, [b](const Tensor& g, const Node&) { return g / b; });
}
Tensor rsub(const Tensor& a, double b) {
  detail::check_defined("rsub", a);
  Tensor x = a.to(scalar_dtype(BinaryOp::Sub, a.dtype(), b));  // 0.5 - int64 is float32, as in PyTorch
  Tensor out = empty(x.sizes(), x.options());
  backend_for(x).binary_scalar(BinaryOp::Mul, x, -1.0, out);
  backend_for(out).binary_scalar(BinaryOp::Add, out, b, out);
  return record1("rsub", a, out, {}, [](const Tensor& g, const Node&) { return neg(g); });
}
Tensor rdiv(const Tensor& a, double b) {
  detail::check_defined("rdiv", a);
  Tensor x = is_floating(a.dtype()) ? a : a.to(kFloat32);
  Tensor out = run_binary(BinaryOp::Div, full({}, b, x.options()), x);
  return record1("rdiv", a, out, {a, out}, [](const Tensor& g, const Node& n) {
    return neg(g * n.saved_tensor(1) / n.saved_tensor(0));
  });
}

Tensor eq(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::Ge, a, b); }
Tensor eq(const Tensor& a, double b) { return run_scalar(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, double b) { return run_scalar(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, double b) { return run_scalar(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, double b) { return run_scalar(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, double b) { return run_scalar(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, double b) { return run_scalar(BinaryOp::Ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::LogicalAnd, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::LogicalOr, a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined("where", cond);
  detail::check_defined("where", a);
  detail::check_defined("where", b);
  TG_CHECK(cond.dtype() == kBool, "where: condition must be bool, got {}", dtype_name(cond.dtype()));
  detail::check_same_device("where", cond, a);
  detail::check_same_device("where", a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  DType t = promote_types(a.dtype(), b.dtype());
  Tensor out = empty(shape, a.options().dtype(t));
  backend_for(a).where(detail::raw_broadcast(cond, shape), detail::raw_broadcast(a.to(t), shape),
                       detail::raw_broadcast(b.to(t), shape), out);
  if (autograd::needs_grad({a, b})) {
    bool ra = a.requires_grad(), rb = b.requires_grad();
    autograd::record("where", out, {cond, a, b}, {cond},
                     [sa = a.sizes(), sb = b.sizes(), ra, rb](const Tensor& g, const Node& n) {
                       Tensor c = n.saved_tensor(0);
                       return std::vector<Tensor>{Tensor(), ra ? sum_to(where(c, g, 0.0), sa) : Tensor(),
                                                  rb ? sum_to(where(c, 0.0, g), sb) : Tensor()};
                     });
  }
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, double b) {
  detail::check_defined("where", a);
  return where(cond, a, full({}, b, a.options()));
}
Tensor where(const Tensor& cond, double a, const Tensor& b) {
  detail::check_defined("where", b);
  return where(cond, full({}, a, b.options()), b);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  detail::check_defined("masked_fill", x);
  detail::check_defined("masked_fill", mask);
  TG_CHECK(mask.dtype() == kBool, "masked_fill: mask must be bool, got {}", dtype_name(mask.dtype()));
  TG_CHECK(broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill") == x.sizes(),
           "masked_fill: mask of shape {} cannot be broadcast to shape {}", shape_str(mask.sizes()), shape_str(x.sizes()));
  return where(mask, full({}, value, x.options()), x);
}

Tensor outer(const Tensor& a, const Tensor& b) {
  detail::check_defined("outer", a);
  detail::check_defined("outer", b);
  TG_CHECK(a.dim() == 1 && b.dim() == 1, "outer: expects two 1-d tensors, got shapes {} and {}", shape_str(a.sizes()),
           shape_str(b.sizes()));
  return mul(a.unsqueeze(1), b.unsqueeze(0));
}

bool equal(const Tensor& a, const Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  NoGradGuard g;
  return a.numel() == 0 || eq(a, b).to(kInt64).sum().item<int64_t>() == a.numel();
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  NoGradGuard g;
  Shape s = broadcast_shapes(a.sizes(), b.sizes(), "allclose");
  if (shape_numel(s) == 0) return true;
  Tensor x = a.to(kFloat64), y = b.to(kFloat64);
  Tensor diff = abs(x - y), tol = abs(y) * rtol + atol;
  return le(diff, tol).to(kInt64).sum().item<int64_t>() == shape_numel(s);
}

}  // namespace tg
