// The interface a device backend implements, grouped by op family. core/ checks arguments and allocates
// outputs; a backend only computes. Every kernel accepts strided inputs; outputs are fresh and contiguous
// unless a method says otherwise.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace tg {

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Tanh, Sigmoid, Relu, GeluErf, GeluTanh, Silu, Softplus, Sin, Cos,
  Clamp,        // p0 = lo, p1 = hi
  PowScalar,    // p0 = exponent
  LogicalNot,   // any dtype -> bool
  // derivatives used by backward formulas (d/dx of the op, evaluated at x)
  GeluErfGrad, GeluTanhGrad, SiluGrad, SoftplusGrad,  // Softplus: p0 = beta, p1 = threshold
  ClampMask,    // 1 where lo <= x <= hi else 0 (p0 = lo, p1 = hi)
};

enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,
  Eq, Ne, Lt, Le, Gt, Ge,  // -> bool
  LogicalAnd, LogicalOr,   // -> bool
};

inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

enum class ReduceOp : uint8_t { Sum, Max, Min, ArgMax, ArgMin };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p) = 0;

  // dst = src, elementwise over dst's shape (src already broadcast to it), converting dtypes. dst may be a view.
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  virtual void fill(const Tensor& dst, double value) = 0;  // dst may be a view

  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) = 0;
  // a and b are views broadcast to out's shape with the same dtype; out is bool for comparisons.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  virtual void binary_scalar(BinaryOp op, const Tensor& a, double b, const Tensor& out) = 0;
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;

  // Reduces x over `dims` (sorted, unique) into out, whose shape is x's with those dims kept as size 1.
  virtual void reduce(ReduceOp op, const Tensor& x, const Shape& dims, const Tensor& out) = 0;
  virtual void cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) = 0;
  virtual void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) = 0;
  // grad_x from the forward output y and grad_y.
  virtual void softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log,
                                const Tensor& grad_x) = 0;

  // out[b] = a[b] @ b[b] for 3-d a [B, M, K], b [B, K, N] (any strides; stride 0 broadcasts a batch).
  virtual void matmul(const Tensor& a, const Tensor& b, const Tensor& out) = 0;

  virtual void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) = 0;
  virtual void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) = 0;
  // out[..., index[i], ...] += src[..., i, ...] along dim (in place on out).
  virtual void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;
  // out[index[p] at dim, rest of p] += src[p] (in place on out), as torch.scatter_add_.
  virtual void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;
  // Keeps the lower (or upper) triangle of the last two dims relative to diagonal k, zeroing the rest.
  virtual void triangle(const Tensor& x, int64_t k, bool upper, const Tensor& out) = 0;
};

// The backend for a device; a tg::Error if that backend was not built.
Backend& backend_for(Device d);
inline Backend& backend_for(const Tensor& t) { return backend_for(t.device()); }
void register_backend(DeviceType type, Backend* b);

}  // namespace tg
