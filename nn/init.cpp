// The initialisers of nn/init.h. Values are drawn in float64 from the default generator and copied into the
// tensor, so the same seed gives the same initial model whatever the tensor's dtype or device.
#include "nn/init.h"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/ops.h"

namespace tg::nn::init {

namespace {

void check(const char* op, const Tensor& t) {
  TG_CHECK(t.defined(), "init.{}: undefined tensor", op);
  TG_CHECK(t.is_floating_point(), "init.{}: expected a floating tensor, got {}", op, dtype_name(t.dtype()));
}

// Writes float64 values (any shape with t's numel) into t.
Tensor assign(Tensor& t, const Tensor& values) {
  NoGradGuard g;
  t.copy_(values.reshape(t.sizes()));
  return t;
}

int64_t fan(const Tensor& t, const std::string& mode) {
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  TG_CHECK(mode == "fan_in" || mode == "fan_out", "init.kaiming: mode must be \"fan_in\" or \"fan_out\", got \"{}\"",
           mode);
  return mode == "fan_in" ? in : out;
}

}  // namespace

double calculate_gain(const std::string& nl, std::optional<double> param) {
  if (nl == "linear" || nl == "conv1d" || nl == "conv2d" || nl == "conv3d" || nl == "conv_transpose1d" ||
      nl == "sigmoid")
    return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") {
    double slope = param.value_or(0.01);
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nl == "selu") return 3.0 / 4.0;
  TG_ERROR("init.calculate_gain: unsupported nonlinearity \"{}\"", nl);
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  TG_CHECK(t.defined() && t.dim() >= 2,
           "init: fan in and fan out need a tensor with at least 2 dims, got shape {}",
           t.defined() ? shape_str(t.sizes()) : "undefined");
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor uniform_(Tensor t, double a, double b) {
  check("uniform_", t);
  NoGradGuard g;
  return assign(t, add(mul(rand(t.sizes(), kFloat64), b - a), a));
}

Tensor normal_(Tensor t, double mean, double stddev) {
  check("normal_", t);
  NoGradGuard g;
  return assign(t, add(mul(randn(t.sizes(), kFloat64), stddev), mean));
}

Tensor constant_(Tensor t, double value) {
  check("constant_", t);
  NoGradGuard g;
  t.fill_(value);
  return t;
}
Tensor zeros_(Tensor t) { return constant_(std::move(t), 0.0); }
Tensor ones_(Tensor t) { return constant_(std::move(t), 1.0); }

Tensor eye_(Tensor t) {
  check("eye_", t);
  TG_CHECK(t.dim() == 2, "init.eye_: expects a 2-d tensor, got shape {}", shape_str(t.sizes()));
  const int64_t r = t.size(0), c = t.size(1);
  std::vector<double> v(static_cast<size_t>(r * c), 0.0);
  for (int64_t i = 0; i < std::min(r, c); ++i) v[i * c + i] = 1.0;
  return assign(t, tensor(v, {r, c}));
}

Tensor xavier_uniform_(Tensor t, double gain) {
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  double a = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  return uniform_(std::move(t), -a, a);
}

Tensor xavier_normal_(Tensor t, double gain) {
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  return normal_(std::move(t), 0.0, gain * std::sqrt(2.0 / static_cast<double>(in + out)));
}

Tensor kaiming_uniform_(Tensor t, double a, const std::string& mode, const std::string& nonlinearity) {
  double sd = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(t, mode)));
  double bound = std::sqrt(3.0) * sd;
  return uniform_(std::move(t), -bound, bound);
}

Tensor kaiming_normal_(Tensor t, double a, const std::string& mode, const std::string& nonlinearity) {
  double sd = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(t, mode)));
  return normal_(std::move(t), 0.0, sd);
}

Tensor orthogonal_(Tensor t, double gain) {
  check("orthogonal_", t);
  TG_CHECK(t.dim() >= 2, "init.orthogonal_: expects at least 2 dims, got shape {}", shape_str(t.sizes()));
  const int64_t rows = t.size(0), cols = rows ? t.numel() / rows : 0;
  if (t.numel() == 0) return t;
  // Orthonormalise the n = min(rows, cols) columns of a tall m x n normal matrix A (m = max(rows, cols)) by modified
  // Gram-Schmidt, twice for full precision. Its R has a positive diagonal, which is the sign convention PyTorch
  // enforces on LAPACK's QR (q *= sign(diag(r))), so the distribution matches.
  const int64_t m = std::max(rows, cols), n = std::min(rows, cols);
  std::vector<double> a = randn({m, n}, kFloat64).to_vector<double>();  // row-major m x n, column j = a[i*n + j]
  for (int64_t j = 0; j < n; ++j) {
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t k = 0; k < j; ++k) {
        double d = 0;
        for (int64_t i = 0; i < m; ++i) d += a[i * n + k] * a[i * n + j];
        for (int64_t i = 0; i < m; ++i) a[i * n + j] -= d * a[i * n + k];
      }
    double norm = 0;
    for (int64_t i = 0; i < m; ++i) norm += a[i * n + j] * a[i * n + j];
    norm = std::sqrt(norm);
    TG_CHECK(norm > 0, "init.orthogonal_: degenerate random matrix");
    for (int64_t i = 0; i < m; ++i) a[i * n + j] /= norm;
  }
  for (double& v : a) v *= gain;
  Tensor q = tensor(a, {m, n});
  return assign(t, rows < cols ? q.t().contiguous() : q);
}

}  // namespace tg::nn::init
