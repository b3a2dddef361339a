// The fused nn ops: linear, cross_entropy, layer_norm and rms_norm. Each is one recorded node whose forward and
// backward run the backend's fused kernels (backends/backend.h, "fused nn kernels"), where the composition of
// small ops would cost temporaries and passes over memory (linear, cross-entropy) or be less stable (the norms).
// tests/test_nn_functional.cpp gradchecks each against its composed reference.
#include <limits>

#include "autograd/functions/common.h"
#include "nn/detail.h"
#include "nn/functional.h"

namespace tg::nn::functional {

using autograd::Node;
using namespace tg::nn::detail;

namespace {

// A contiguous t viewed with `sizes`, without autograd.
Tensor as_rows(const Tensor& t, Shape sizes) {
  Tensor c = dense(t);
  Shape st = contiguous_strides(sizes);
  return tg::detail::raw_view(c, std::move(sizes), std::move(st), c.storage_offset());
}

}  // namespace

// ---- linear: y = x @ W^T + b
// backward: grad_x = g @ W, grad_W = g^T @ x, grad_b = sum over rows of g.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear";
  check_floating(op, "input", x);
  TG_CHECK(weight.defined() && weight.dim() == 2, "linear: weight must be 2-d [out, in], got {}",
           weight.defined() ? shape_str(weight.sizes()) : "undefined");
  const int64_t N = weight.size(0), K = weight.size(1);
  TG_CHECK(x.dim() >= 1 && x.size(-1) == K, "linear: input of shape {} has {} features but weight {} expects {}",
           shape_str(x.sizes()), x.dim() ? x.size(-1) : 0, shape_str(weight.sizes()), K);
  check_param(op, "weight", weight, x, weight.sizes());
  check_param(op, "bias", bias, x, {N});
  Shape lead(x.sizes().begin(), x.sizes().end() - 1);
  const int64_t M = shape_numel(lead);
  Shape out_shape = lead;
  out_shape.push_back(N);

  Tensor x2 = as_rows(x, {M, K}), w2 = dense(weight), b2 = dense(bias);
  Tensor out = empty(out_shape, x.options());
  backend_for(x).linear(x2, w2, b2, as_rows(out, {M, N}));
  if (autograd::needs_grad({x, weight, bias})) {
    const bool rx = x.requires_grad(), rw = weight.requires_grad(), rb = bias.defined() && bias.requires_grad();
    autograd::record(op, out, {x, weight, bias}, {x2, w2},
                     [rx, rw, rb, M, N, xs = x.sizes()](const Tensor& g, const Node& n) {
                       Tensor xv = n.saved_tensor(0), wv = n.saved_tensor(1);
                       Tensor g2 = as_rows(g, {M, N});
                       return std::vector<Tensor>{rx ? mm(g2, wv).view(xs) : Tensor(),
                                                  rw ? mm(g2.t(), xv) : Tensor(),
                                                  rb ? sum(g2, {0}) : Tensor()};
                     });
  }
  return out;
}

// ---- cross-entropy over rows [R, C], reduced inside the op so that the MLP step records one node for its loss.
namespace {

Tensor cross_entropy_rows(const Tensor& logits, const Tensor& target, int64_t ignore_index, double smoothing,
                          Reduction red) {
  const int64_t R = logits.size(0);
  Tensor x = logits.contiguous();  // recorded, if it copies: the permuted [N, C, d...] case
  Tensor t = dense(target);
  Tensor loss = empty({R}, x.options()), lse = empty({R}, x.options());
  const int64_t count = backend_for(x).cross_entropy(x, t, ignore_index, smoothing, loss, lse);
  Tensor out;
  {
    NoGradGuard g;
    out = reduce_loss(loss, red, static_cast<double>(count));
  }
  if (autograd::needs_grad({x})) {
    autograd::record("cross_entropy", out, {x}, {x, t, lse},
                     [=](const Tensor& g, const Node& n) {
                       Tensor xv = n.saved_tensor(0), tv = n.saved_tensor(1), lv = n.saved_tensor(2);
                       // The per-row gradient of the loss: g itself, or the scalar g (/ count) broadcast to rows.
                       Tensor gl = g;
                       if (red != Reduction::None) {
                         Tensor s = red == Reduction::Mean ? div(g, static_cast<double>(count)) : g;
                         gl = tg::detail::raw_broadcast(s, {R});
                       }
                       Tensor gx = empty(xv.sizes(), xv.options());
                       backend_for(xv).cross_entropy_backward(xv, tv, lv, gl, ignore_index, smoothing, gx);
                       return std::vector<Tensor>{gx};
                     });
  }
  return out;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double label_smoothing,
                     const std::string& reduction) {
  TG_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing must be in [0, 1], got {}",
           label_smoothing);
  const Reduction red = parse_reduction(reduction, "cross_entropy");
  ClassRows cr = class_rows("cross_entropy", logits, targets);
  Tensor out = cross_entropy_rows(cr.rows, cr.targets, ignore_index, label_smoothing, red);
  return red == Reduction::None ? out.reshape(cr.target_shape) : out;
}

// ---- layer norm and RMS norm: one op, `center` choosing layer norm.
namespace {

Tensor norm_op(const char* op, const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
               const Tensor& bias, double eps, bool center) {
  check_floating(op, "input", x);
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool trailing = k >= 1 && k <= x.dim();
  for (int64_t i = 0; trailing && i < k; ++i) trailing = x.size(x.dim() - k + i) == normalized_shape[i];
  TG_CHECK(trailing, "{}: normalized_shape {} must be the trailing dims of the input, got input shape {}", op,
           shape_str(normalized_shape), shape_str(x.sizes()));
  check_param(op, "weight", weight, x, normalized_shape);
  check_param(op, "bias", bias, x, normalized_shape);
  const int64_t D = shape_numel(normalized_shape);
  const int64_t R = shape_numel(Shape(x.sizes().begin(), x.sizes().end() - k));

  Tensor x2 = as_rows(x, {R, D}), w2 = weight.defined() ? as_rows(weight, {D}) : Tensor(),
         b2 = bias.defined() ? as_rows(bias, {D}) : Tensor();
  Tensor out = empty(x.sizes(), x.options());
  Tensor mean = center ? empty({R}, x.options()) : Tensor(), rstd = empty({R}, x.options());
  backend_for(x).norm(x2, w2, b2, eps, center, as_rows(out, {R, D}), mean, rstd);

  if (autograd::needs_grad({x, weight, bias})) {
    const bool rx = x.requires_grad(), rw = weight.defined() && weight.requires_grad(),
               rb = bias.defined() && bias.requires_grad();
    // Saved: x2, rstd, then weight and mean when present (undefined tensors cannot be saved).
    std::vector<Tensor> saved{x2, rstd};
    if (w2.defined()) saved.push_back(w2);
    if (center) saved.push_back(mean);
    const bool has_w = w2.defined();
    autograd::record(op, out, {x, weight, bias}, std::move(saved),
                     [=, xs = x.sizes()](const Tensor& g, const Node& n) {
                       Tensor xv = n.saved_tensor(0), rs = n.saved_tensor(1);
                       size_t i = 2;
                       Tensor wv = has_w ? n.saved_tensor(i++) : Tensor();
                       Tensor mv = center ? n.saved_tensor(i++) : Tensor();
                       Tensor gx = rx ? empty(xs, xv.options()) : Tensor();
                       Tensor gw = rw ? empty(normalized_shape, xv.options()) : Tensor();
                       Tensor gb = rb ? empty(normalized_shape, xv.options()) : Tensor();
                       backend_for(xv).norm_backward(as_rows(g, {R, D}), xv, wv, mv, rs, center,
                                                     rx ? as_rows(gx, {R, D}) : Tensor(),
                                                     rw ? as_rows(gw, {D}) : Tensor(),
                                                     rb ? as_rows(gb, {D}) : Tensor());
                       return std::vector<Tensor>{gx, gw, gb};
                     });
  }
  return out;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  return norm_op("layer_norm", x, normalized_shape, weight, bias, eps, true);
}

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  double e = 0;
  if (eps) e = *eps;
  else if (x.defined())
    e = x.dtype() == kFloat64 ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
  return norm_op("rms_norm", x, normalized_shape, weight, Tensor(), e, false);
}

}  // namespace tg::nn::functional
