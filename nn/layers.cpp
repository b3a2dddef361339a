// The basic layers: parameter registration with PyTorch's default initialisation, and forward via nn::functional.
#include "nn/layers.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "nn/init.h"

namespace tg::nn {

namespace F = functional;

namespace {
TensorOptions param_options(TensorOptions opt) { return opt.requires_grad(false); }

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what kaiming_uniform_(a = sqrt(5)) gives a weight, and PyTorch's bias init.
void fan_in_uniform(Tensor& t, int64_t fan_in) {
  double b = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  init::uniform_(t, -b, b);
}
}  // namespace

// ---- Linear
Linear::Linear(int64_t in, int64_t out, bool with_bias, TensorOptions opt) : in_features(in), out_features(out) {
  TG_CHECK(in >= 0 && out >= 0, "Linear: feature counts must be >= 0, got {} and {}", in, out);
  weight = register_parameter("weight", empty({out, in}, param_options(opt)));
  if (with_bias) bias = register_parameter("bias", empty({out}, param_options(opt)));
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) fan_in_uniform(bias, in_features);
}

Tensor Linear::forward(const Tensor& x) { return F::linear(x, weight, bias); }

// ---- Embedding
Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad, TensorOptions opt)
    : num_embeddings(num), embedding_dim(dim), padding_idx(pad) {
  if (pad) {
    TG_CHECK(*pad >= -num && *pad < num, "Embedding: padding_idx {} out of range for {} embeddings", *pad, num);
    if (*pad < 0) padding_idx = *pad + num;
  }
  weight = register_parameter("weight", empty({num, dim}, param_options(opt)));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (padding_idx) {
    NoGradGuard g;
    weight.select(0, *padding_idx).fill_(0.0);
  }
}

Tensor Embedding::forward(const Tensor& indices) { return F::embedding(indices, weight, padding_idx); }

// ---- LayerNorm, RMSNorm
LayerNorm::LayerNorm(Shape shape, double eps_, bool affine, bool with_bias, TensorOptions opt)
    : normalized_shape(std::move(shape)), eps(eps_) {
  if (affine) {
    weight = register_parameter("weight", ones(normalized_shape, param_options(opt)));
    if (with_bias) bias = register_parameter("bias", zeros(normalized_shape, param_options(opt)));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return F::layer_norm(x, normalized_shape, weight, bias, eps); }

RMSNorm::RMSNorm(Shape shape, std::optional<double> eps_, bool affine, TensorOptions opt)
    : normalized_shape(std::move(shape)), eps(eps_) {
  if (affine) weight = register_parameter("weight", ones(normalized_shape, param_options(opt)));
}

Tensor RMSNorm::forward(const Tensor& x) { return F::rms_norm(x, normalized_shape, weight, eps); }

// ---- Dropout
Dropout::Dropout(double p_) : p(p_) {
  TG_CHECK(p >= 0 && p <= 1, "Dropout: probability must be in [0, 1], got {}", p);
}

Tensor Dropout::forward(const Tensor& x) { return F::dropout(x, p, is_training()); }

// ---- Conv1d
Conv1d::Conv1d(const Conv1dOptions& o, TensorOptions opt) : options(o) {
  TG_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.kernel_size > 0 && o.groups > 0,
           "Conv1d: channels, kernel_size and groups must be positive (got {}, {}, {}, {})", o.in_channels,
           o.out_channels, o.kernel_size, o.groups);
  TG_CHECK(o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0,
           "Conv1d: in_channels {} and out_channels {} must be divisible by groups {}", o.in_channels, o.out_channels,
           o.groups);
  TG_CHECK(!o.causal || (o.padding == 0 && o.stride == 1), "Conv1d: causal convolution takes padding 0 and stride 1");
  weight = register_parameter("weight", empty({o.out_channels, o.in_channels / o.groups, o.kernel_size},
                                              param_options(opt)));
  if (o.bias) bias = register_parameter("bias", empty({o.out_channels}, param_options(opt)));
  reset_parameters();
}

Conv1d::Conv1d(int64_t in, int64_t out, int64_t k, TensorOptions opt)
    : Conv1d(Conv1dOptions{.in_channels = in, .out_channels = out, .kernel_size = k}, opt) {}

void Conv1d::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) fan_in_uniform(bias, options.in_channels / options.groups * options.kernel_size);
}

Tensor Conv1d::forward(const Tensor& x) {
  const auto& o = options;
  if (o.causal) return F::causal_conv1d(x, weight, bias, o.dilation, o.groups);
  return F::conv1d(x, weight, bias, o.stride, o.padding, o.dilation, o.groups);
}

}  // namespace tg::nn
