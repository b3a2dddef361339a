// gradcheck: autograd's vector-Jacobian product against central differences, element by element.
#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"

namespace tg {

namespace {

// Pointer to logical element i of a CPU float64 tensor with any strides.
double* element(const Tensor& t, int64_t i) {
  double* p = static_cast<double*>(t.data_ptr());
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.size(d)) * t.stride(d);
    i /= t.size(d);
  }
  return p + off;
}

bool overlaps(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) > 1 && t.stride(d) == 0) return true;
  return false;
}

}  // namespace

bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
               const GradcheckOptions& opt, std::string* report) {
  std::vector<Tensor> diff;
  for (const Tensor& t : inputs) {
    if (!t.defined() || !t.requires_grad()) continue;
    TG_CHECK(t.dtype() == kFloat64, "gradcheck: inputs that require grad must be float64, got {}", dtype_name(t.dtype()));
    TG_CHECK(t.is_leaf(), "gradcheck: inputs must be leaves");
    TG_CHECK(!overlaps(t), "gradcheck: input of shape {} has overlapping elements (stride 0)", shape_str(t.sizes()));
    diff.push_back(t);
  }
  TG_CHECK(!diff.empty(), "gradcheck: no input requires grad");
  Generator gen(20240611);
  for (int p = 0; p < opt.projections; ++p) {
    Tensor out = fn(inputs);
    TG_CHECK(out.dtype() == kFloat64, "gradcheck: fn must return float64, got {}", dtype_name(out.dtype()));
    Tensor w = empty(out.sizes(), kFloat64);
    for (int64_t i = 0; i < w.numel(); ++i) w.data<double>()[i] = gen.normal();
    std::vector<Tensor> analytic;
    if (out.requires_grad()) analytic = autograd::grad({(out * w).sum()}, diff, {}, false, /*allow_unused=*/true);
    else analytic.resize(diff.size());
    auto objective = [&] {
      NoGradGuard g;
      return (fn(inputs) * w).sum().item<double>();
    };
    for (size_t k = 0; k < diff.size(); ++k) {
      Tensor a = analytic[k].defined() ? analytic[k].contiguous() : zeros(diff[k].sizes(), kFloat64);
      TG_CHECK(a.sizes() == diff[k].sizes(), "gradcheck: gradient of shape {} for input of shape {}",
               shape_str(a.sizes()), shape_str(diff[k].sizes()));
      for (int64_t i = 0; i < diff[k].numel(); ++i) {
        double* e = element(diff[k], i);
        const double orig = *e;
        *e = orig + opt.eps;
        double fp = objective();
        *e = orig - opt.eps;
        double fm = objective();
        *e = orig;
        double num = (fp - fm) / (2 * opt.eps);
        double ana = a.data<double>()[i];
        if (!(std::abs(num - ana) <= opt.atol + opt.rtol * std::abs(num))) {
          if (report)
            *report = fmt::format("gradcheck: input {} (shape {}) element {}: numerical {} vs analytical {}", k,
                                  shape_str(diff[k].sizes()), i, num, ana);
          return false;
        }
      }
    }
  }
  return true;
}

}  // namespace tg
