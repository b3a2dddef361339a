// minGRU and minLSTM: the fused logcumsumexp op (over Backend::logcumsumexp), the Heinsen log-space scan composed
// from cumsum and logcumsumexp, and the two layers with their parallel (scan) and sequential (step) modes.
#include "nn/min_rnn.h"

#include <cmath>

#include "autograd/functions/common.h"
#include "nn/detail.h"

namespace tg::nn {

namespace functional {

using autograd::Node;

Tensor logcumsumexp(const Tensor& x, int64_t dim) {
  detail::check_floating("logcumsumexp", "input", x);
  if (x.dim() == 0) return x.clone();
  const int64_t d = wrap_dim(dim, x.dim(), "logcumsumexp");
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  const Shape s3{outer, x.size(d), inner};
  auto view3 = [s3](const Tensor& t) {
    return tg::detail::raw_view(t, s3, contiguous_strides(s3), t.storage_offset());
  };
  Tensor xc;
  {
    NoGradGuard g;
    xc = x.contiguous();
  }
  Tensor out = empty(x.sizes(), x.options());
  if (out.numel()) backend_for(x).logcumsumexp(view3(xc), view3(out));
  if (autograd::needs_grad({x}))
    autograd::record("logcumsumexp", out, {x}, {xc, out}, [view3](const Tensor& g, const Node& n) {
      Tensor xv = n.saved_tensor(0), ov = n.saved_tensor(1);
      Tensor gc = g.contiguous(), gx = empty(xv.sizes(), xv.options());
      if (gx.numel()) backend_for(xv).logcumsumexp_backward(view3(xv), view3(ov), view3(gc), view3(gx));
      return std::vector<Tensor>{gx};
    });
  return out;
}

Tensor min_rnn_g(const Tensor& x) { return where(ge(x, 0.0), x + 0.5, sigmoid(x)); }

Tensor min_rnn_log_g(const Tensor& x) {
  return where(ge(x, 0.0), log(relu(x) + 0.5), -softplus(-x));  // relu keeps log's argument positive on both sides
}

Tensor heinsen_scan(const Tensor& log_a, const Tensor& log_b) {
  Tensor a_star = cumsum(log_a, 1);
  return a_star + logcumsumexp(log_b - a_star, 1);
}

}  // namespace functional

namespace F = functional;

MinRNNBase::MinRNNBase(int64_t d, double expansion, int gates, bool proj_out, TensorOptions opt)
    : dim(d), dim_inner(static_cast<int64_t>(static_cast<double>(d) * expansion)), gates_(gates) {
  TG_CHECK(dim > 0 && dim_inner > 0, "{}: dim and dim * expansion must be positive, got {} and {}", name(), dim,
           dim_inner);
  to_hidden_and_gates = register_module("to_hidden_and_gates",
                                        std::make_shared<Linear>(dim, gates * dim_inner, false, opt));
  if (proj_out) to_out = register_module("to_out", std::make_shared<Linear>(dim_inner, dim, false, opt));
}

std::tuple<Tensor, Tensor> MinRNNBase::forward(const Tensor& x, const Tensor& h0) {
  TG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == dim, "{}: input must be [B, T, {}], got {}", name(), dim,
           x.defined() ? shape_str(x.sizes()) : "undefined");
  const int64_t B = x.size(0), T = x.size(1);
  if (T == 0) return {empty({B, 0, to_out ? dim : dim_inner}, x.options()), h0};
  auto [log_a, log_b] = log_coefficients(to_hidden_and_gates->forward(x).chunk(gates_, 2));
  if (h0.defined()) {  // h0 enters as one more value with coefficient 1 (log 0) in front
    log_b = cat({log(h0).unsqueeze(1), log_b}, 1);
    log_a = cat({zeros({B, 1, dim_inner}, log_a.options().requires_grad(false)), log_a}, 1);
  }
  Tensor h = exp(F::heinsen_scan(log_a, log_b));
  if (h0.defined()) h = h.narrow(1, 1, T);
  return {project(h), h.select(1, T - 1)};
}

Tensor MinRNNBase::step(const Tensor& x_t, const Tensor& h) {
  auto [a, b] = coefficients(to_hidden_and_gates->forward(x_t).chunk(gates_, 1));
  return h.defined() ? a * h + b : b;
}

std::tuple<Tensor, Tensor> MinRNNBase::forward_sequential(const Tensor& x, const Tensor& h0) {
  TG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == dim, "{}: input must be [B, T, {}], got {}", name(), dim,
           x.defined() ? shape_str(x.sizes()) : "undefined");
  Tensor h = h0;
  std::vector<Tensor> hs;
  for (int64_t t = 0; t < x.size(1); ++t) hs.push_back(h = step(x.select(1, t), h));
  if (hs.empty()) return {empty({x.size(0), 0, to_out ? dim : dim_inner}, x.options()), h0};
  return {project(stack(hs, 1)), h};
}

// ---- minGRU: chunks (hidden, gate k); a = 1 - sigma(k), b = sigma(k) g(hidden).
//   log a = -softplus(k), log b = -softplus(-k) + log g(hidden)
MinGRU::MinGRU(int64_t d, double expansion, std::optional<bool> proj_out, TensorOptions opt)
    : MinRNNBase(d, expansion, 2, proj_out.value_or(expansion != 1.0), opt) {}

std::tuple<Tensor, Tensor> MinGRU::log_coefficients(const std::vector<Tensor>& c) const {
  return {-softplus(c[1]), -softplus(-c[1]) + F::min_rnn_log_g(c[0])};
}

std::tuple<Tensor, Tensor> MinGRU::coefficients(const std::vector<Tensor>& c) const {
  Tensor z = sigmoid(c[1]);
  return {1.0 - z, z * F::min_rnn_g(c[0])};
}

// ---- minLSTM: chunks (hidden, f, i); a = f' = f / (f + i), b = i' g(hidden). In log space, with
// d = softplus(-f_pre) - softplus(-i_pre): log f' = -softplus(d), log i' = -softplus(-d).
MinLSTM::MinLSTM(int64_t d, double expansion, std::optional<bool> proj_out, TensorOptions opt)
    : MinRNNBase(d, expansion, 3, proj_out.value_or(expansion != 1.0), opt) {}

std::tuple<Tensor, Tensor> MinLSTM::log_coefficients(const std::vector<Tensor>& c) const {
  Tensor d = softplus(-c[1]) - softplus(-c[2]);
  return {-softplus(d), -softplus(-d) + F::min_rnn_log_g(c[0])};
}

std::tuple<Tensor, Tensor> MinLSTM::coefficients(const std::vector<Tensor>& c) const {
  Tensor f = sigmoid(c[1]), i = sigmoid(c[2]);
  return {f / (f + i), i / (f + i) * F::min_rnn_g(c[0])};
}

}  // namespace tg::nn
