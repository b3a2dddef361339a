// tg::nn::functional: the stateless forms of the layers and the losses, as torch.nn.functional.
// The fused ops (linear, cross_entropy, layer_norm, rms_norm) are defined with their backward in nn/fused.cpp over
// the backend's fused nn kernels; the rest are compositions of tg ops in nn/functional.cpp, differentiated by the
// tape. Every function is checked by float64 gradcheck and PyTorch parity (tests/test_nn_functional.cpp).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/ops.h"
#include "core/tensor.h"

namespace tg::nn::functional {

// The activations are the core ops; re-exported so that `namespace F = tg::nn::functional` reads as in PyTorch.
using tg::gelu;
using tg::log_softmax;
using tg::relu;
using tg::sigmoid;
using tg::silu;
using tg::softmax;
using tg::softplus;
using tg::tanh;

// ---- layers
// y = x @ weight^T + bias for x [*, in], weight [out, in], bias [out] or undefined. One fused op: the bias is
// written into the GEMM's output before the product accumulates into it; backward is two GEMMs and a row sum.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

// Rows of weight [V, D] picked by int64 indices of any shape. Positions whose index is padding_idx (negative values
// count from V) send no gradient to that row, as in PyTorch.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx = std::nullopt);

// Zeroes elements with probability p and scales the rest by 1 / (1 - p) when training; the identity otherwise.
// The mask is drawn from tg::default_generator().
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);

// 1-d convolution (cross-correlation, as PyTorch) of x [N, C_in, L] (or unbatched [C_in, L]) with weight
// [C_out, C_in / groups, K] and optional bias [C_out]. padding pads both ends with zeros.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, int64_t stride = 1, int64_t padding = 0,
              int64_t dilation = 1, int64_t groups = 1);
// The causal form Mamba and H3 use: (K - 1) * dilation zeros on the left only, so output t sees inputs <= t and
// the output has x's length. Equal to conv1d with padding (K - 1) * dilation trimmed to the first L outputs.
// With groups = C_in = C_out it is the depthwise "short convolution" of those models.
Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, int64_t dilation = 1,
                     int64_t groups = 1);
// The general form, with separate left and right zero padding.
Tensor conv1d_padded(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t pad_left,
                     int64_t pad_right, int64_t dilation, int64_t groups);

// Normalises over the trailing dims normalized_shape (as PyTorch), then scales by weight and adds bias (each of
// shape normalized_shape, or undefined). Fused: forward keeps each row's mean and 1/std for the fused backward.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);
// x / sqrt(mean(x^2) + eps) * weight over the trailing dims normalized_shape. eps defaults, as torch.nn.RMSNorm's
// None, to the machine epsilon of x's dtype (1.19e-7 for float32). Fused like layer_norm.
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                std::optional<double> eps = std::nullopt);

// ---- attention (nn/attention.cpp)
// softmax(q k^T * scale + mask) v, as torch.nn.functional.scaled_dot_product_attention, for q [B, H, T, D] and
// k [B, Hkv, S, D], v [B, Hkv, S, Dv] (or the 3-d [B, T, D] forms: one head). Hkv may divide H (grouped-query and
// multi-query attention, as PyTorch's enable_gqa = True): query head h reads kv head h / (H / Hkv).
// attn_mask broadcasts to [B, H, T, S]: bool (true = take part, as PyTorch) or q's dtype (added to the logits; it
// receives no gradient). is_causal masks key j for query i when j > i (top-left aligned, as PyTorch). scale
// defaults to 1 / sqrt(D). dropout_p drops attention weights (drawn from tg::default_generator()); pass 0 in eval.
// One fused op (backends/cpu/attention.cpp): blocked, with an online softmax, so that memory grows with T + S, not
// T * S; backward recomputes the probabilities from each row's saved logsumexp. A row whose keys are all masked
// gives zeros (PyTorch's math path gives NaN). The output is a [B, H, T, Dv] view of a [B, T, H, Dv] buffer, so
// that out.transpose(1, 2).reshape({B, T, H * Dv}), how multi-head attention merges its heads, copies nothing.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask = {},
                                    double dropout_p = 0.0, bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);
// The fused op with an explicit dropout seed (what scaled_dot_product_attention calls after drawing the seed).
Tensor scaled_dot_product_attention_seeded(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                           double dropout_p, bool is_causal, std::optional<double> scale,
                                           uint64_t dropout_seed);
// The same function composed of tg ops (matmul, masked_fill, softmax, matmul), materialising the T x S weights: the
// readable reference the fused op is tested against. With dropout it applies attention_dropout_mask(seed, ...), the
// mask the fused kernel regenerates. Fully masked rows give NaN here, as in PyTorch.
Tensor scaled_dot_product_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                              bool is_causal = false, std::optional<double> scale = std::nullopt,
                                              uint64_t dropout_seed = 0);
// The keep mask (bool [B, H, T, S]) of the fused kernel's dropout for a seed (backends/backend.h).
Tensor attention_dropout_mask(uint64_t seed, int64_t B, int64_t H, int64_t T, int64_t S, double p);

// ---- losses. reduction is "mean", "sum" or "none".
// Fused log-softmax + negative log-likelihood. logits [N, C] (or [C], or [N, C, d1, ...] with the classes in dim 1
// as in PyTorch), targets int64 class indices [N] (or [], [N, d1, ...]). Targets equal to ignore_index add no loss
// and no gradient, and "mean" divides by the number of the others. label_smoothing s mixes the one-hot target with
// the uniform distribution: loss = (1 - s) * nll + s * mean_c(-log_softmax), as PyTorch.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, const std::string& reduction = "mean");
// Negative log-likelihood of log-probabilities [N, C] (or [C], [N, C, d1, ...]) at int64 targets.
Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index = -100,
                const std::string& reduction = "mean");
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
// The stable form max(-x, 0) + log(1 + exp(-|x|)) of -log(sigmoid(x)) terms, as PyTorch:
//   loss = (1 - y) * x + (1 + (pos_weight - 1) * y) * (log(1 + exp(-|x|)) + max(-x, 0)), times weight.
// pos_weight broadcasts against the last dim (one weight per class); weight against the input.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                                        const Tensor& pos_weight = {}, const std::string& reduction = "mean");

}  // namespace tg::nn::functional
