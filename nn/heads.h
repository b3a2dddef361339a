// Helpers shared by the linear-attention family (nn/linear_attention.cpp, nn/gla.cpp, nn/aaren.cpp): moving
// between the [B, T, H * D] layout of a projection and the [B, H, T, D] layout of the functional forms, and the
// argument checks of those forms (not public API).
#pragma once
#include <cstdint>

#include "core/ops.h"

namespace tg::nn::detail {

// [B, T, H * D] -> [B, H, T, D] (a view).
inline Tensor split_heads(const Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).permute({0, 2, 1, 3});
}
// [B, H, T, D] -> [B, T, H * D].
inline Tensor merge_heads(const Tensor& x) {
  return x.permute({0, 2, 1, 3}).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

// q, k [B, H, T, Dk] and v [B, H, T, Dv]: floating, one dtype, matching batch, heads and length.
inline void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  TG_CHECK(q.defined() && k.defined() && v.defined(), "{}: q, k and v must be defined", op);
  TG_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "{}: q, k, v must be [B, H, T, D], got {}, {}, {}", op,
           shape_str(q.sizes()), shape_str(k.sizes()), shape_str(v.sizes()));
  TG_CHECK(q.is_floating_point() && k.dtype() == q.dtype() && v.dtype() == q.dtype(),
           "{}: q, k, v must share one floating dtype, got {}, {}, {}", op, dtype_name(q.dtype()),
           dtype_name(k.dtype()), dtype_name(v.dtype()));
  TG_CHECK(q.sizes() == k.sizes() && v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == q.size(2),
           "{}: q and k must have one shape [B, H, T, Dk] and v [B, H, T, Dv], got {}, {}, {}", op,
           shape_str(q.sizes()), shape_str(k.sizes()), shape_str(v.sizes()));
}

// A sequence-mixing module's input: floating [B, T, d_model].
inline void check_sequence(const char* op, const Tensor& x, int64_t d_model) {
  TG_CHECK(x.defined() && x.is_floating_point() && x.dim() == 3 && x.size(2) == d_model,
           "{}: input must be floating [B, T, d_model = {}], got {} {}", op, d_model,
           x.defined() ? dtype_name(x.dtype()) : "undefined", x.defined() ? shape_str(x.sizes()) : "");
}

// One step's input: floating [B, d_model].
inline void check_step(const char* op, const Tensor& x, int64_t d_model) {
  TG_CHECK(x.defined() && x.is_floating_point() && x.dim() == 2 && x.size(1) == d_model,
           "{}: step input must be floating [B, d_model = {}], got {} {}", op, d_model,
           x.defined() ? dtype_name(x.dtype()) : "undefined", x.defined() ? shape_str(x.sizes()) : "");
}

}  // namespace tg::nn::detail
