// Helpers shared by nn/fused.cpp, nn/rnn_fused.cpp and nn/functional.cpp: loss reductions and argument checks (not public API).
#pragma once
#include <string>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace tg::nn::detail {

enum class Reduction { None, Mean, Sum };

inline Reduction parse_reduction(const std::string& r, const char* op) {
  if (r == "mean") return Reduction::Mean;
  if (r == "sum") return Reduction::Sum;
  if (r == "none") return Reduction::None;
  TG_ERROR("{}: reduction must be \"mean\", \"sum\" or \"none\", got \"{}\"", op, r);
}

// Applies a reduction to per-element losses; "mean" divides by `count` (the number of elements that count, which
// is fewer than numel when some are ignored; 0 gives NaN, as PyTorch).
inline Tensor reduce_loss(const Tensor& loss, Reduction r, double count) {
  switch (r) {
    case Reduction::None: return loss;
    case Reduction::Sum: return sum(loss);
    case Reduction::Mean: return div(sum(loss), count);
  }
  return loss;
}

// t as a contiguous tensor without recording (a fused node itself carries the gradient).
inline Tensor dense(const Tensor& t) {
  if (!t.defined() || t.is_contiguous()) return t;
  NoGradGuard g;
  return t.contiguous();
}

inline void check_floating(const char* op, const char* what, const Tensor& t) {
  TG_CHECK(t.defined(), "{}: {} is undefined", op, what);
  TG_CHECK(t.is_floating_point(), "{}: {} must be floating, got {}", op, what, dtype_name(t.dtype()));
}

// An optional tensor (weight, bias) must match x's dtype and device and have shape `shape`.
inline void check_param(const char* op, const char* what, const Tensor& p, const Tensor& x, const Shape& shape) {
  if (!p.defined()) return;
  TG_CHECK(p.dtype() == x.dtype(), "{}: {} has dtype {} but the input has {}", op, what, dtype_name(p.dtype()),
           dtype_name(x.dtype()));
  TG_CHECK(p.device() == x.device(), "{}: {} is on {} but the input is on {}", op, what, p.device().str(),
           x.device().str());
  TG_CHECK(p.sizes() == shape, "{}: {} has shape {}, expected {}", op, what, shape_str(p.sizes()), shape_str(shape));
}

// Classification inputs as rows: logits or log-probabilities [C], [N, C] or [N, C, d1, ...] (classes in dim 1, as
// PyTorch) become rows [R, C] with targets [R]; target_shape is the shape of an unreduced loss.
struct ClassRows {
  Tensor rows, targets;
  Shape target_shape;
};

inline ClassRows class_rows(const char* op, const Tensor& x, const Tensor& targets) {
  check_floating(op, "input", x);
  TG_CHECK(targets.defined() && targets.dtype() == kInt64, "{}: targets must be int64 class indices, got {}", op,
           targets.defined() ? dtype_name(targets.dtype()) : "undefined");
  TG_CHECK(x.device() == targets.device(), "{}: input on {} and targets on {}", op, x.device().str(),
           targets.device().str());
  TG_CHECK(x.dim() >= 1, "{}: the input needs a class dim, got a 0-d tensor", op);
  Shape tshape = x.sizes();  // without the class dim (dim 1, or dim 0 when unbatched)
  tshape.erase(tshape.begin() + (x.dim() == 1 ? 0 : 1));
  TG_CHECK(targets.sizes() == tshape, "{}: input of shape {} needs targets of shape {}, got {}", op,
           shape_str(x.sizes()), shape_str(tshape), shape_str(targets.sizes()));
  const int64_t C = x.dim() == 1 ? x.size(0) : x.size(1);
  Tensor rows = x;
  if (x.dim() == 1) rows = x.unsqueeze(0);
  if (x.dim() > 2) {  // [N, C, d...] -> [N, d..., C] -> [R, C]
    Shape perm{0};
    for (int64_t d = 2; d < x.dim(); ++d) perm.push_back(d);
    perm.push_back(1);
    rows = x.permute(perm).reshape({-1, C});
  }
  return {rows, targets.reshape({-1}), tshape};
}

}  // namespace tg::nn::detail
