// Gradient clipping, as torch.nn.utils: clip_grad_norm_ rescales all gradients together when their joint norm
// exceeds max_norm; clip_grad_value_ clamps each element. Parameters without a gradient are skipped.
#pragma once
#include <limits>
#include <vector>

#include "core/tensor.h"

namespace tg::optim {

inline constexpr double kInfNorm = std::numeric_limits<double>::infinity();

// total = the norm_type-norm of the per-tensor norms (the max of |g| for kInfNorm); every gradient is multiplied
// by min(1, max_norm / (total + 1e-6)). Returns total (before clipping). The norms are accumulated in float64.
// With error_if_nonfinite, a NaN or infinite total is a tg::Error and nothing is changed.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// Clamps every gradient element to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace tg::optim
