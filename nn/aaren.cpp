// Aaren: the (m, u, w) prefix scan and the sequential (m, c, a) recurrence composed from tensor ops, and the layer.
//
// Both forms treat the running maxima m as constants (computed without grad): the outputs w / u are exactly
// invariant to the reference m chosen, so the gradient through m is zero and the rest of the tape is the full
// gradient. The leaves are therefore (m_i, u_i, w_i) = (s_i, e^{s_i - m_i}, v_i e^{s_i - m_i}) with m_i detached,
// which carries the gradient of s through u and w.
#include "nn/aaren.h"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "nn/heads.h"
#include "nn/init.h"

namespace tg::nn {

namespace functional {

namespace {

void check_sv(const char* op, const Tensor& s, const Tensor& v, int64_t s_dims) {
  TG_CHECK(s.defined() && v.defined() && s.dim() == s_dims && v.dim() == s_dims + 1,
           "{}: scores must be {}-d and values {}-d, got {} and {}", op, s_dims, s_dims + 1,
           s.defined() ? shape_str(s.sizes()) : "undefined", v.defined() ? shape_str(v.sizes()) : "undefined");
  TG_CHECK(s.is_floating_point() && v.dtype() == s.dtype(), "{}: scores and values must share one floating dtype, got {}, {}",
           op, dtype_name(s.dtype()), dtype_name(v.dtype()));
  for (int64_t d = 0; d < s_dims; ++d)
    TG_CHECK(s.size(d) == v.size(d), "{}: scores {} and values {} disagree in dim {}", op, shape_str(s.sizes()),
             shape_str(v.sizes()), d);
}

Tensor detached(const Tensor& t) {
  NoGradGuard g;
  return t.detach();
}

}  // namespace

Tensor aaren_scan(const Tensor& s, const Tensor& v) {
  check_sv("aaren_scan", s, v, 3);
  const int64_t T = s.size(2);
  if (T == 0) return zeros(v.sizes(), v.options());
  Tensor m = detached(s);
  Tensor u = exp(s - m);  // ones, with the gradient of s
  Tensor w = v * u.unsqueeze(-1);
  // Hillis-Steele: after the step with offset d, position t holds the combination of (t - 2d, t].
  for (int64_t d = 1; d < T; d *= 2) {
    const int64_t n = T - d;
    Tensor mA = m.narrow(2, 0, n), mB = m.narrow(2, d, n);
    Tensor mn = detached(maximum(mA, mB));
    Tensor eA = exp(mA - mn), eB = exp(mB - mn);
    Tensor un = u.narrow(2, 0, n) * eA + u.narrow(2, d, n) * eB;
    Tensor wn = w.narrow(2, 0, n) * eA.unsqueeze(-1) + w.narrow(2, d, n) * eB.unsqueeze(-1);
    m = cat({m.narrow(2, 0, d), mn}, 2);
    u = cat({u.narrow(2, 0, d), un}, 2);
    w = cat({w.narrow(2, 0, d), wn}, 2);
  }
  return w / u.unsqueeze(-1);
}

std::tuple<Tensor, AarenState> aaren_step(const Tensor& s_t, const Tensor& v_t, const AarenState& st) {
  check_sv("aaren_step", s_t, v_t, 2);
  AarenState next;
  if (!st.m.defined()) {
    next.m = detached(s_t);
    next.c = exp(s_t - next.m);
    next.a = v_t * next.c.unsqueeze(-1);
  } else {
    next.m = detached(maximum(st.m, s_t));
    Tensor decay = exp(st.m - next.m), e = exp(s_t - next.m);
    next.c = st.c * decay + e;
    next.a = st.a * decay.unsqueeze(-1) + v_t * e.unsqueeze(-1);
  }
  return {next.a / next.c.unsqueeze(-1), next};
}

Tensor aaren_sequential(const Tensor& s, const Tensor& v) {
  check_sv("aaren_sequential", s, v, 3);
  AarenState st;
  std::vector<Tensor> os;
  for (int64_t t = 0; t < s.size(2); ++t) {
    auto [o, next] = aaren_step(s.select(2, t), v.select(2, t), st);
    os.push_back(o);
    st = next;
  }
  if (os.empty()) return zeros(v.sizes(), v.options());
  return stack(os, 2);
}

}  // namespace functional

namespace F = functional;

Aaren::Aaren(int64_t dm, int64_t h, TensorOptions opt) : d_model(dm), n_heads(h) {
  TG_CHECK(dm > 0 && h > 0 && dm % h == 0, "Aaren: d_model ({}) must be a positive multiple of n_heads ({})", dm, h);
  head_dim = dm / h;
  TensorOptions popt = opt;
  popt.requires_grad_ = false;
  query = register_parameter("query", empty({h, head_dim}, popt));
  init::normal_(query);
  k_proj = register_module("k_proj", std::make_shared<Linear>(dm, dm, false, opt));
  v_proj = register_module("v_proj", std::make_shared<Linear>(dm, dm, false, opt));
  o_proj = register_module("o_proj", std::make_shared<Linear>(dm, dm, false, opt));
}

std::tuple<Tensor, Tensor> Aaren::scores_values(const Tensor& x) const {
  Tensor k = detail::split_heads(k_proj->forward(x), n_heads);  // [B, H, T, D]
  Tensor q = query.view({1, n_heads, head_dim, 1});
  Tensor s = matmul(k, q).squeeze(-1) / std::sqrt(static_cast<double>(head_dim));  // [B, H, T]
  return {s, detail::split_heads(v_proj->forward(x), n_heads)};
}

Tensor Aaren::forward(const Tensor& x) {
  detail::check_sequence("Aaren", x, d_model);
  auto [s, v] = scores_values(x);
  return o_proj->forward(detail::merge_heads(F::aaren_scan(s, v)));
}

Tensor Aaren::forward_sequential(const Tensor& x) {
  detail::check_sequence("Aaren", x, d_model);
  auto [s, v] = scores_values(x);
  return o_proj->forward(detail::merge_heads(F::aaren_sequential(s, v)));
}

std::tuple<Tensor, AarenState> Aaren::step(const Tensor& x_t, const AarenState& st) {
  detail::check_step("Aaren.step", x_t, d_model);
  auto [s, v] = scores_values(x_t.unsqueeze(1));
  auto [o, next] = F::aaren_step(s.select(2, 0), v.select(2, 0), st);
  return {o_proj->forward(o.reshape({x_t.size(0), d_model})), next};
}

}  // namespace tg::nn
