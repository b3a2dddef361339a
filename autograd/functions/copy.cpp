// Copies and conversions (contiguous, clone, to) and the in-place writes (fill_, zero_, copy_, add_, mul_).
// In-place writes are not recorded: they are for optimizers and for code under NoGradGuard, and they bump the
// storage version so that autograd notices a tensor it saved has changed.
#include "autograd/functions/common.h"

namespace tg {

using autograd::Node;

namespace detail {

void prepare_inplace(const char* op, const Tensor& t) {
  check_defined(op, t);
  TG_CHECK(!(GradMode::is_enabled() && t.requires_grad()),
           "{}: in-place operation on a tensor that requires grad (shape {}) while grad mode is on; wrap it in "
           "tg::NoGradGuard or use the out-of-place op", op, shape_str(t.sizes()));
  t.storage()->version++;
}

Tensor checked_index(const char* op, const Tensor& index, int64_t size, bool allow_negative) {
  check_defined(op, index);
  TG_CHECK(index.dtype() == kInt64, "{}: index must be int64, got {}", op, dtype_name(index.dtype()));
  if (index.numel() == 0) return index;
  NoGradGuard g;
  int64_t lo = amin(index, {}, false).item<int64_t>(), hi = amax(index, {}, false).item<int64_t>();
  int64_t min_ok = allow_negative ? -size : 0;
  TG_CHECK(lo >= min_ok && hi < size, "{}: index {} out of range for a dim of size {}", op, lo < min_ok ? lo : hi,
           size);
  if (lo >= 0) return index;
  return where(lt(index, 0.0), add(index, static_cast<double>(size)), index);
}

}  // namespace detail

Tensor clone(const Tensor& x) {
  detail::check_defined("clone", x);
  Tensor out = empty(x.sizes(), x.options());
  backend_for(x).copy(x, out);
  if (autograd::needs_grad({x}))
    autograd::record("clone", out, {x}, {}, [](const Tensor& g, const Node&) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor contiguous(const Tensor& x) {
  detail::check_defined("contiguous", x);
  return x.is_contiguous() ? x : clone(x);
}

Tensor to(const Tensor& x, DType dtype) {
  detail::check_defined("to", x);
  if (x.dtype() == dtype) return x;
  Tensor out = empty(x.sizes(), x.options().dtype(dtype));
  backend_for(x).copy(x, out);
  if (is_floating(dtype) && autograd::needs_grad({x}))
    autograd::record("to", out, {x}, {}, [from = x.dtype()](const Tensor& g, const Node&) {
      return std::vector<Tensor>{g.to(from)};
    });
  return out;
}

Tensor to(const Tensor& x, Device device) {
  detail::check_defined("to", x);
  if (x.device() == device) return x;
  Tensor src = x.contiguous();
  Tensor out = empty(x.sizes(), x.options().device(device));
  // The non-CPU side performs a cross-device copy.
  backend_for(device.is_cpu() ? x.device() : device).copy(src, out);
  if (autograd::needs_grad({x}))
    autograd::record("to_device", out, {x}, {}, [from = x.device()](const Tensor& g, const Node&) {
      return std::vector<Tensor>{g.to(from)};
    });
  return out;
}

Tensor& Tensor::fill_(double v) {
  detail::prepare_inplace("fill_", *this);
  backend_for(*this).fill(*this, v);
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::copy_(const Tensor& src) {
  detail::prepare_inplace("copy_", *this);
  detail::check_defined("copy_", src);
  Shape b = broadcast_shapes(sizes(), src.sizes(), "copy_");
  TG_CHECK(b == sizes(), "copy_: source of shape {} cannot be broadcast to destination of shape {}",
           shape_str(src.sizes()), shape_str(sizes()));
  Tensor s = detail::raw_broadcast(src, sizes());
  if (src.device() != device()) s = s.contiguous().to(device());
  backend_for(*this).copy(s, *this);
  return *this;
}

Tensor& Tensor::add_(const Tensor& o, double alpha) {
  detail::prepare_inplace("add_", *this);
  detail::check_defined("add_", o);
  detail::check_same_device("add_", *this, o);
  Shape b = broadcast_shapes(sizes(), o.sizes(), "add_");
  TG_CHECK(b == sizes(), "add_: operand of shape {} cannot be broadcast to shape {}", shape_str(o.sizes()),
           shape_str(sizes()));
  Tensor other = o.dtype() == dtype() ? o : o.to(dtype());
  if (alpha != 1.0) {
    NoGradGuard g;
    other = tg::mul(other, alpha);
  }
  backend_for(*this).binary(BinaryOp::Add, *this, detail::raw_broadcast(other, sizes()), *this);
  return *this;
}

Tensor& Tensor::mul_(double s) {
  detail::prepare_inplace("mul_", *this);
  backend_for(*this).binary_scalar(BinaryOp::Mul, *this, s, *this);
  return *this;
}

}  // namespace tg
