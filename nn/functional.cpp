// The composed functional ops: embedding with padding_idx, dropout, conv1d (im2col by strided slices + one
// batched matmul, or a shifted-slice sum for the depthwise case), and the losses nll / mse / BCE-with-logits.
// They are built from differentiable tg ops, so the tape derives their backward.
#include "autograd/grad_mode.h"
#include "core/random.h"
#include "nn/detail.h"
#include "nn/functional.h"

namespace tg::nn::functional {

using namespace tg::nn::detail;

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx) {
  TG_CHECK(weight.defined() && weight.dim() == 2, "embedding: weight must be 2-d [num, dim], got {}",
           weight.defined() ? shape_str(weight.sizes()) : "undefined");
  Tensor out = tg::embedding(weight, indices);
  if (!padding_idx) return out;
  const int64_t V = weight.size(0), pad_row = *padding_idx < 0 ? *padding_idx + V : *padding_idx;
  TG_CHECK(pad_row >= 0 && pad_row < V, "embedding: padding_idx {} out of range for {} rows", *padding_idx, V);
  if (!out.requires_grad()) return out;
  // Same values, but the padding positions take theirs from a detached copy, so the padding row gets no gradient.
  Tensor pad = eq(indices, static_cast<double>(pad_row)).unsqueeze(-1);
  return where(pad, out.detach(), out);
}

Tensor dropout(const Tensor& x, double p, bool training) {
  TG_CHECK(p >= 0 && p <= 1, "dropout: probability must be in [0, 1], got {}", p);
  check_floating("dropout", "input", x);
  if (!training || p == 0) return x;
  Tensor mask;
  {
    NoGradGuard g;
    TensorOptions opt = TensorOptions(x.dtype()).device(x.device());
    // keep with probability 1 - p, scaled so that the expectation is x; p = 1 drops everything.
    mask = p == 1 ? zeros(x.sizes(), opt) : mul(ge(rand(x.sizes(), opt), p).to(x.dtype()), 1.0 / (1.0 - p));
  }
  return mul(x, mask);
}

Tensor conv1d_padded(const Tensor& x_in, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t pad_left,
                     int64_t pad_right, int64_t dilation, int64_t groups) {
  const char* op = "conv1d";
  check_floating(op, "input", x_in);
  TG_CHECK(x_in.dim() == 2 || x_in.dim() == 3, "conv1d: input must be [N, C, L] or [C, L], got {}",
           shape_str(x_in.sizes()));
  TG_CHECK(weight.defined() && weight.dim() == 3, "conv1d: weight must be [C_out, C_in / groups, K], got {}",
           weight.defined() ? shape_str(weight.sizes()) : "undefined");
  TG_CHECK(stride >= 1 && dilation >= 1 && groups >= 1 && pad_left >= 0 && pad_right >= 0,
           "conv1d: stride, dilation, groups must be >= 1 and padding >= 0 (got {}, {}, {}, {}/{})", stride, dilation,
           groups, pad_left, pad_right);
  const bool unbatched = x_in.dim() == 2;
  Tensor x = unbatched ? x_in.unsqueeze(0) : x_in;
  const int64_t N = x.size(0), Cin = x.size(1), L = x.size(2);
  const int64_t Cout = weight.size(0), K = weight.size(2);
  TG_CHECK(Cin % groups == 0 && Cout % groups == 0 && weight.size(1) == Cin / groups,
           "conv1d: input with {} channels, weight {} and groups {} do not fit (C_in and C_out must divide by groups, "
           "weight.size(1) == C_in / groups)", Cin, shape_str(weight.sizes()), groups);
  check_param(op, "weight", weight, x, weight.sizes());
  check_param(op, "bias", bias, x, {Cout});
  const int64_t Lp = L + pad_left + pad_right, span = dilation * (K - 1) + 1;
  TG_CHECK(Lp >= span, "conv1d: padded input length {} is shorter than the kernel's span {}", Lp, span);
  const int64_t Lout = (Lp - span) / stride + 1;

  if (pad_left || pad_right) {
    TensorOptions opt = TensorOptions(x.dtype()).device(x.device());
    x = cat({zeros({N, Cin, pad_left}, opt), x, zeros({N, Cin, pad_right}, opt)}, 2);
  }
  // The k-th tap sees x[..., k * dilation + stride * t] for output t.
  auto tap = [&](int64_t k) { return x.slice(2, k * dilation, k * dilation + stride * (Lout - 1) + 1, stride); };

  Tensor out;
  if (groups == Cin && Cout == Cin) {  // depthwise: out[n, c, t] = sum_k w[c, 0, k] * tap_k[n, c, t]
    for (int64_t k = 0; k < K; ++k) {
      Tensor term = mul(tap(k), weight.select(2, k));  // [N, C, Lout] * [C, 1]
      out = k == 0 ? term : add(out, term);
    }
  } else {  // im2col: columns [N, G, C_in/G * K, Lout] against weights [G, C_out/G, C_in/G * K]
    std::vector<Tensor> taps;
    for (int64_t k = 0; k < K; ++k) taps.push_back(tap(k));
    Tensor cols = stack(taps, 2).reshape({N, groups, Cin / groups * K, Lout});
    Tensor w = weight.reshape({groups, Cout / groups, Cin / groups * K});
    out = matmul(w, cols).reshape({N, Cout, Lout});
  }
  if (bias.defined()) out = add(out, bias.unsqueeze(1));
  return unbatched ? out.squeeze(0) : out;
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  return conv1d_padded(x, weight, bias, stride, padding, padding, dilation, groups);
}

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t dilation, int64_t groups) {
  TG_CHECK(weight.defined() && weight.dim() == 3, "causal_conv1d: weight must be [C_out, C_in / groups, K]");
  return conv1d_padded(x, weight, bias, 1, (weight.size(2) - 1) * dilation, 0, dilation, groups);
}

// ---- losses

Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index, const std::string& reduction) {
  const Reduction red = parse_reduction(reduction, "nll_loss");
  ClassRows cr = class_rows("nll_loss", log_probs, targets);
  Tensor valid = ne(cr.targets, static_cast<double>(ignore_index));
  Tensor safe = where(valid, cr.targets, 0.0);  // ignored rows pick class 0, then get masked to 0
  Tensor picked = gather(cr.rows, 1, safe.unsqueeze(1)).squeeze(1);
  Tensor loss = where(valid, neg(picked), 0.0);
  const double count = red == Reduction::Mean ? sum(valid).item<double>() : 0.0;
  Tensor out = reduce_loss(loss, red, count);
  return red == Reduction::None ? out.reshape(cr.target_shape) : out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  const Reduction red = parse_reduction(reduction, "mse_loss");
  check_floating("mse_loss", "input", input);
  TG_CHECK(target.defined(), "mse_loss: target is undefined");
  Tensor loss = square(sub(input, target));
  return reduce_loss(loss, red, static_cast<double>(loss.numel()));
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const Tensor& pos_weight, const std::string& reduction) {
  const Reduction red = parse_reduction(reduction, "binary_cross_entropy_with_logits");
  check_floating("binary_cross_entropy_with_logits", "input", input);
  TG_CHECK(target.defined() && target.sizes() == input.sizes(),
           "binary_cross_entropy_with_logits: target shape {} must equal the input shape {}",
           target.defined() ? shape_str(target.sizes()) : "undefined", shape_str(input.sizes()));
  // -log(sigmoid(x)) = log(1 + exp(-x)) = max(-x, 0) + log(1 + exp(-|x|)), finite for every x.
  Tensor neg_log_sig = add(clamp_min(neg(input), 0.0), log(add(exp(neg(abs(input))), 1.0)));
  Tensor coeff = pos_weight.defined() ? add(mul(sub(pos_weight, 1.0), target), 1.0) : Tensor();
  Tensor loss = add(mul(rsub(target, 1.0), input), coeff.defined() ? mul(coeff, neg_log_sig) : neg_log_sig);
  if (weight.defined()) loss = mul(loss, weight);
  return reduce_loss(loss, red, static_cast<double>(loss.numel()));
}

}  // namespace tg::nn::functional
