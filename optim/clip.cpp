// Gradient clipping by joint norm and by value.
#include "optim/clip.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace tg::optim {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  TG_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be > 0 (or kInfNorm), got {}", norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  const bool inf = std::isinf(norm_type);
  double total = 0;
  for (const Tensor& g : grads) {
    Tensor a = abs(g.to(kFloat64));
    if (inf) {
      total = std::max(total, g.numel() ? max(a).item<double>() : 0.0);
    } else {
      // The per-tensor norm, then its norm_type-th power, as torch.norm(stack(norms), p) combines them.
      double n = norm_type == 2 ? std::sqrt(sum(a * a).item<double>())
                 : norm_type == 1 ? sum(a).item<double>()
                                  : std::pow(sum(pow(a, norm_type)).item<double>(), 1 / norm_type);
      total += std::pow(n, norm_type);
    }
  }
  if (!inf) total = norm_type == 2 ? std::sqrt(total) : norm_type == 1 ? total : std::pow(total, 1 / norm_type);
  TG_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total norm of order {} of the "
           "gradients is non-finite ({}), so they cannot be clipped", norm_type, total);
  double coef = max_norm / (total + 1e-6);
  // PyTorch multiplies by the coefficient clamped to 1 (a NaN stays NaN); a multiply by 1 would change nothing.
  if (!(coef >= 1))
    for (Tensor g : grads) g.mul_(coef);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  TG_CHECK(clip_value >= 0, "clip_grad_value_: clip_value must be >= 0, got {}", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    Tensor g = p.grad();
    g.copy_(clamp(g, -clip_value, clip_value));
  }
}

}  // namespace tg::optim
