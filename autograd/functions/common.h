// Helpers shared by the op families in autograd/functions/: argument checks, raw views, output allocation.
#pragma once
#include "autograd/node.h"
#include "backends/backend.h"
#include "core/ops.h"

namespace tg::detail {

// A view of t's storage with other geometry, without autograd (the caller records if needed).
inline Tensor raw_view(const Tensor& t, Shape sizes, Shape strides, int64_t offset) {
  return make_tensor(t.storage(), std::move(sizes), std::move(strides), offset, t.dtype());
}

// t viewed with `shape` by broadcasting (stride 0), without autograd.
inline Tensor raw_broadcast(const Tensor& t, const Shape& shape) {
  if (t.sizes() == shape) return t;
  return raw_view(t, shape, broadcast_strides(t.sizes(), t.strides(), shape), t.storage_offset());
}

inline void check_defined(const char* op, const Tensor& t) { TG_CHECK(t.defined(), "{}: undefined tensor", op); }

inline void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  TG_CHECK(a.device() == b.device(), "{}: tensors on {} and {}", op, a.device().str(), b.device().str());
}

// Index tensors are int64; every value must lie in [0, size) (negative values count from the end, as in PyTorch,
// where `allow_negative`). Returns the index with negatives wrapped.
Tensor checked_index(const char* op, const Tensor& index, int64_t size, bool allow_negative);

// Refuses in-place writes that autograd cannot see, and bumps the version counter.
void prepare_inplace(const char* op, const Tensor& t);

}  // namespace tg::detail
