// The basic layers, each a Module over its functional form in nn/functional.h, initialised as PyTorch does so
// that a tapegrad model starts where the same PyTorch model would (in distribution; the generators differ).
// Parameters are public members named as in libtorch (weight, bias), registered under those names.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "nn/functional.h"
#include "nn/module.h"

namespace tg::nn {

// y = x W^T + b, weight [out, in]. Init: W and b ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_(a = sqrt(5)) for
// W, as torch.nn.Linear).
class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  void reset_parameters();
  int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined when built without one
};

// A lookup table [num_embeddings, embedding_dim] ~ N(0, 1); forward takes int64 indices of any shape. The
// padding_idx row starts at zero and receives no gradient.
class Embedding : public UnaryModule {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt,
            TensorOptions opt = {});
  Tensor forward(const Tensor& indices) override;
  void reset_parameters();
  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;
  Tensor weight;
};

// Layer normalisation over the trailing dims normalized_shape; weight ones and bias zeros when affine.
class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, bool bias = true,
                     TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  Shape normalized_shape;
  double eps;
  Tensor weight, bias;
};

// RMS normalisation (Zhang & Sennrich 2019) over normalized_shape, weight ones. eps = nullopt takes the machine
// epsilon of the input's dtype, as torch.nn.RMSNorm(eps=None).
class RMSNorm : public UnaryModule {
 public:
  explicit RMSNorm(Shape normalized_shape, std::optional<double> eps = std::nullopt, bool elementwise_affine = true,
                   TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  Shape normalized_shape;
  std::optional<double> eps;
  Tensor weight;
};

// Zeroes elements with probability p and scales the rest by 1 / (1 - p) in training mode; the identity in eval().
class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  double p;
};

struct Conv1dOptions {
  int64_t in_channels = 0, out_channels = 0, kernel_size = 1;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
  // Left-only padding of (kernel_size - 1) * dilation, so the output keeps the input's length and step t sees only
  // inputs <= t (padding must then be 0). With groups = in = out channels: Mamba's and H3's short convolution.
  bool causal = false;
};

// 1-d convolution over [N, C_in, L] (or [C_in, L]); weight [C_out, C_in / groups, K], bias [C_out], both
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C_in / groups * K, as torch.nn.Conv1d.
//   Conv1d conv({.in_channels = 8, .out_channels = 8, .kernel_size = 4, .groups = 8, .causal = true});
class Conv1d : public UnaryModule {
 public:
  explicit Conv1d(const Conv1dOptions& options, TensorOptions opt = {});
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  void reset_parameters();
  Conv1dOptions options;
  Tensor weight, bias;
};

// A parameter-free module around an elementwise function; the named activations below are instances.
class Activation : public UnaryModule {
 public:
  Activation(std::string name, std::function<Tensor(const Tensor&)> f) : name_(std::move(name)), f_(std::move(f)) {}
  Tensor forward(const Tensor& x) override { return f_(x); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&)> f_;
};

struct ReLU : Activation {
  ReLU() : Activation("ReLU", [](const Tensor& x) { return relu(x); }) {}
};
struct GELU : Activation {
  explicit GELU(std::string approximate = "none")
      : Activation("GELU", [a = std::move(approximate)](const Tensor& x) { return gelu(x, a); }) {}
};
struct SiLU : Activation {
  SiLU() : Activation("SiLU", [](const Tensor& x) { return silu(x); }) {}
};
struct Tanh : Activation {
  Tanh() : Activation("Tanh", [](const Tensor& x) { return tg::tanh(x); }) {}
};
struct Sigmoid : Activation {
  Sigmoid() : Activation("Sigmoid", [](const Tensor& x) { return sigmoid(x); }) {}
};

}  // namespace tg::nn
