// Parameter initialisers, as torch.nn.init: each fills a tensor in place (without recording, like PyTorch's
// no_grad) from tg::default_generator(), and returns it. Fans follow PyTorch's rule: for a weight [out, in, *k],
// fan_in = in * prod(k) and fan_out = out * prod(k). The layers use these for PyTorch's default initialisations.
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "core/tensor.h"

namespace tg::nn::init {

// The recommended gain for a nonlinearity: "linear", "conv1d", "sigmoid" -> 1, "tanh" -> 5/3, "relu" -> sqrt(2),
// "leaky_relu" -> sqrt(2 / (1 + param^2)) (param the negative slope, default 0.01), "selu" -> 3/4.
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);
// (fan_in, fan_out) of a tensor with at least 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor uniform_(Tensor t, double a = 0.0, double b = 1.0);
Tensor normal_(Tensor t, double mean = 0.0, double stddev = 1.0);
Tensor constant_(Tensor t, double value);
Tensor zeros_(Tensor t);
Tensor ones_(Tensor t);
Tensor eye_(Tensor t);  // 2-d: the identity where it fits

// Glorot & Bengio: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)); normal with std gain * sqrt(2 / (fan_in +
// fan_out)).
Tensor xavier_uniform_(Tensor t, double gain = 1.0);
Tensor xavier_normal_(Tensor t, double gain = 1.0);
// He et al.: std = gain(nonlinearity, a) / sqrt(fan), fan = fan_in or fan_out by mode; uniform bound sqrt(3) * std.
// PyTorch's Linear/Conv default is kaiming_uniform_(w, a = sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor kaiming_uniform_(Tensor t, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu");
Tensor kaiming_normal_(Tensor t, double a = 0.0, const std::string& mode = "fan_in",
                       const std::string& nonlinearity = "leaky_relu");
// Saxe et al.: a (semi-)orthogonal matrix from the QR factorisation of a standard normal one, with the signs fixed
// so that R has a positive diagonal (as PyTorch), times gain. Tensors of more than 2 dims are treated as
// [size(0), numel / size(0)].
Tensor orthogonal_(Tensor t, double gain = 1.0);

}  // namespace tg::nn::init
