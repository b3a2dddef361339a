// Gated Linear Attention: the recurrent and chunked forms composed from tensor ops (differentiated by the tape),
// and the GatedLinearAttention layer.
#include "nn/gla.h"

#include <cmath>
#include <vector>

#include "nn/heads.h"

namespace tg::nn {

namespace functional {

namespace {

void check_gla(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_alpha,
               const Tensor& S0) {
  detail::check_qkv(op, q, k, v);
  TG_CHECK(log_alpha.defined() && log_alpha.sizes() == k.sizes() && log_alpha.dtype() == k.dtype(),
           "{}: log_alpha must have k's shape {} and dtype {}, got {} {}", op, shape_str(k.sizes()),
           dtype_name(k.dtype()), log_alpha.defined() ? dtype_name(log_alpha.dtype()) : "undefined",
           log_alpha.defined() ? shape_str(log_alpha.sizes()) : "");
  if (S0.defined()) {
    Shape want{q.size(0), q.size(1), q.size(3), v.size(3)};
    TG_CHECK(S0.sizes() == want && S0.dtype() == q.dtype(), "{}: initial_state must be {} {}, got {} {}", op,
             dtype_name(q.dtype()), shape_str(want), dtype_name(S0.dtype()), shape_str(S0.sizes()));
  }
}

double default_scale(const Tensor& q, std::optional<double> scale) {
  return scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
}

}  // namespace

std::tuple<Tensor, Tensor> gla_step(const Tensor& q_t, const Tensor& k_t, const Tensor& v_t, const Tensor& log_alpha_t,
                                    const Tensor& S, double scale) {
  TG_CHECK(q_t.defined() && k_t.defined() && v_t.defined() && log_alpha_t.defined() && q_t.dim() == 3 &&
               q_t.sizes() == k_t.sizes() && log_alpha_t.sizes() == k_t.sizes() && v_t.dim() == 3 &&
               v_t.size(0) == q_t.size(0) && v_t.size(1) == q_t.size(1),
           "gla_step: q_t, k_t, log_alpha_t must be [B, H, Dk] and v_t [B, H, Dv], got {}, {}, {}, {}",
           q_t.defined() ? shape_str(q_t.sizes()) : "undefined", k_t.defined() ? shape_str(k_t.sizes()) : "undefined",
           v_t.defined() ? shape_str(v_t.sizes()) : "undefined",
           log_alpha_t.defined() ? shape_str(log_alpha_t.sizes()) : "undefined");
  Tensor kv = k_t.unsqueeze(-1) * v_t.unsqueeze(-2);  // [B, H, Dk, Dv]
  Tensor next = S.defined() ? exp(log_alpha_t).unsqueeze(-1) * S + kv : kv;
  return {matmul((q_t * scale).unsqueeze(-2), next).squeeze(-2), next};
}

std::tuple<Tensor, Tensor> gla_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_alpha,
                                         std::optional<double> scale, const Tensor& initial_state) {
  check_gla("gla_recurrent", q, k, v, log_alpha, initial_state);
  const double sc = default_scale(q, scale);
  Tensor S = initial_state;
  std::vector<Tensor> os;
  for (int64_t t = 0; t < q.size(2); ++t) {
    auto [o, next] = gla_step(q.select(2, t), k.select(2, t), v.select(2, t), log_alpha.select(2, t), S, sc);
    os.push_back(o);
    S = next;
  }
  if (!S.defined()) S = zeros({q.size(0), q.size(1), q.size(3), v.size(3)}, q.options());
  if (os.empty()) return {zeros(v.sizes(), v.options()), S};
  return {stack(os, 2), S};
}

std::tuple<Tensor, Tensor> gla_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_alpha,
                                       int64_t chunk_size, std::optional<double> scale, const Tensor& initial_state) {
  check_gla("gla_chunked", q, k, v, log_alpha, initial_state);
  TG_CHECK(chunk_size >= 1, "gla_chunked: chunk_size must be >= 1, got {}", chunk_size);
  const double sc = default_scale(q, scale);
  const int64_t T = q.size(2);
  Tensor S = initial_state;
  std::vector<Tensor> os;
  for (int64_t s = 0; s < T; s += chunk_size) {
    const int64_t L = std::min(chunk_size, T - s);
    Tensor qc = q.narrow(2, s, L), kc = k.narrow(2, s, L), vc = v.narrow(2, s, L);
    Tensor b = cumsum(log_alpha.narrow(2, s, L), 2);  // [B, H, L, Dk]: log of the decay from the chunk start to t
    Tensor b_last = b.narrow(2, L - 1, 1);            // [B, H, 1, Dk]
    // q_t exp(b_t) . k_s exp(-b_s) = sum_d q_td k_sd prod_{s < r <= t} alpha_rd: the decay from s to t.
    Tensor qg = qc * exp(b) * sc;
    Tensor A = tril(matmul(qg, (kc * exp(-b)).transpose(-1, -2)));  // [B, H, L, L]
    Tensor o = matmul(A, vc);
    if (S.defined()) o = o + matmul(qg, S);
    os.push_back(o);
    // S_end = Diag(exp(b_L)) S + sum_s (k_s exp(b_L - b_s))^T v_s; every exponent here is <= 0.
    Tensor dS = matmul((kc * exp(b_last - b)).transpose(-1, -2), vc);
    S = S.defined() ? exp(b_last).transpose(-1, -2) * S + dS : dS;
  }
  if (!S.defined()) S = zeros({q.size(0), q.size(1), q.size(3), v.size(3)}, q.options());
  if (os.empty()) return {zeros(v.sizes(), v.options()), S};
  return {os.size() == 1 ? os[0] : cat(os, 2), S};
}

}  // namespace functional

namespace F = functional;

GatedLinearAttention::GatedLinearAttention(const GLAOptions& o, TensorOptions opt) : options(o) {
  key_dim = static_cast<int64_t>(static_cast<double>(o.d_model) * o.expand_k);
  value_dim = static_cast<int64_t>(static_cast<double>(o.d_model) * o.expand_v);
  TG_CHECK(o.d_model > 0 && o.n_heads > 0 && key_dim > 0 && value_dim > 0 && key_dim % o.n_heads == 0 &&
               value_dim % o.n_heads == 0,
           "GatedLinearAttention: key dim {} and value dim {} (d_model {} times expand_k {}, expand_v {}) must be "
           "positive multiples of n_heads {}",
           key_dim, value_dim, o.d_model, o.expand_k, o.expand_v, o.n_heads);
  TG_CHECK(o.gate_low_rank_dim > 0 && o.gate_logit_normalizer > 0 && o.chunk_size >= 1,
           "GatedLinearAttention: gate_low_rank_dim ({}), gate_logit_normalizer ({}) and chunk_size ({}) must be "
           "positive",
           o.gate_low_rank_dim, o.gate_logit_normalizer, o.chunk_size);
  head_k_dim = key_dim / o.n_heads;
  head_v_dim = value_dim / o.n_heads;
  q_proj = register_module("q_proj", std::make_shared<Linear>(o.d_model, key_dim, false, opt));
  k_proj = register_module("k_proj", std::make_shared<Linear>(o.d_model, key_dim, false, opt));
  v_proj = register_module("v_proj", std::make_shared<Linear>(o.d_model, value_dim, false, opt));
  if (o.use_output_gate) g_proj = register_module("g_proj", std::make_shared<Linear>(o.d_model, value_dim, false, opt));
  gk_proj = register_module("gk_proj", std::make_shared<Sequential>(
                                           std::make_shared<Linear>(o.d_model, o.gate_low_rank_dim, false, opt),
                                           std::make_shared<Linear>(o.gate_low_rank_dim, key_dim, true, opt)));
  g_norm = register_module("g_norm", std::make_shared<RMSNorm>(Shape{head_v_dim}, o.norm_eps, true, opt));
  o_proj = register_module("o_proj", std::make_shared<Linear>(value_dim, o.d_model, false, opt));
}

GatedLinearAttention::Projected GatedLinearAttention::project(const Tensor& x) const {
  const int64_t H = options.n_heads;
  // logsigmoid(z) = -softplus(-z): log alpha in (-inf, 0), divided by the normaliser so alpha stays near 1.
  Tensor log_alpha = neg(softplus(neg(gk_proj->forward(x)))) / options.gate_logit_normalizer;
  return {detail::split_heads(q_proj->forward(x), H), detail::split_heads(k_proj->forward(x), H),
          detail::split_heads(v_proj->forward(x), H), detail::split_heads(log_alpha, H)};
}

Tensor GatedLinearAttention::output(const Tensor& o, const Tensor& x) const {
  Tensor y = g_norm->forward(detail::merge_heads(o).view({x.size(0), x.size(1), options.n_heads, head_v_dim}));
  y = y.reshape({x.size(0), x.size(1), value_dim});
  if (g_proj) y = y * silu(g_proj->forward(x));
  return o_proj->forward(y);
}

Tensor GatedLinearAttention::forward(const Tensor& x) {
  detail::check_sequence("GatedLinearAttention", x, options.d_model);
  Projected p = project(x);
  auto [o, S] = F::gla_chunked(p.q, p.k, p.v, p.log_alpha, options.chunk_size);
  return output(o, x);
}

Tensor GatedLinearAttention::forward_recurrent(const Tensor& x) {
  detail::check_sequence("GatedLinearAttention", x, options.d_model);
  Projected p = project(x);
  auto [o, S] = F::gla_recurrent(p.q, p.k, p.v, p.log_alpha);
  return output(o, x);
}

std::tuple<Tensor, Tensor> GatedLinearAttention::step(const Tensor& x_t, const Tensor& S) {
  detail::check_step("GatedLinearAttention.step", x_t, options.d_model);
  Tensor x = x_t.unsqueeze(1);
  Projected p = project(x);
  auto [o, next] = F::gla_step(p.q.select(2, 0), p.k.select(2, 0), p.v.select(2, 0), p.log_alpha.select(2, 0), S,
                               1.0 / std::sqrt(static_cast<double>(head_k_dim)));
  return {output(o.unsqueeze(2), x).squeeze(1), next};
}

}  // namespace tg::nn
