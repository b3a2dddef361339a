// Linear attention: the elu+1 feature map, the recurrent and chunked causal forms composed from tensor ops (the
// tape differentiates them), and the LinearAttention layer.
#include "nn/linear_attention.h"

#include <vector>

#include "nn/heads.h"

namespace tg::nn {

namespace functional {

Tensor elu_feature_map(const Tensor& x) {
  // exp(min(x, 0)) keeps the unused branch of where() finite (and its gradient zero) for large x.
  return where(gt(x, 0.0), x + 1.0, exp(clamp_max(x, 0.0)));
}

std::tuple<Tensor, LinearAttentionState> linear_attention_step(const Tensor& q_t, const Tensor& k_t, const Tensor& v_t,
                                                               const LinearAttentionState& st, double eps) {
  TG_CHECK(q_t.defined() && k_t.defined() && v_t.defined() && q_t.dim() == 3 && q_t.sizes() == k_t.sizes() &&
               v_t.dim() == 3 && v_t.size(0) == q_t.size(0) && v_t.size(1) == q_t.size(1),
           "linear_attention_step: q_t, k_t must be [B, H, Dk] and v_t [B, H, Dv], got {}, {}, {}",
           q_t.defined() ? shape_str(q_t.sizes()) : "undefined", k_t.defined() ? shape_str(k_t.sizes()) : "undefined",
           v_t.defined() ? shape_str(v_t.sizes()) : "undefined");
  Tensor kv = k_t.unsqueeze(-1) * v_t.unsqueeze(-2);  // k_t^T v_t, [B, H, Dk, Dv]
  LinearAttentionState next{st.S.defined() ? st.S + kv : kv, st.z.defined() ? st.z + k_t : k_t};
  Tensor num = matmul(q_t.unsqueeze(-2), next.S).squeeze(-2);  // [B, H, Dv]
  Tensor den = sum(q_t * next.z, {-1}, true) + eps;             // [B, H, 1]
  return {num / den, next};
}

Tensor linear_attention_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, double eps) {
  detail::check_qkv("linear_attention_recurrent", q, k, v);
  LinearAttentionState st;
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < q.size(2); ++t) {
    auto [y, next] = linear_attention_step(q.select(2, t), k.select(2, t), v.select(2, t), st, eps);
    ys.push_back(y);
    st = next;
  }
  if (ys.empty()) return zeros(v.sizes(), v.options());
  return stack(ys, 2);
}

Tensor linear_attention_chunked(const Tensor& q, const Tensor& k, const Tensor& v, int64_t chunk_size, double eps) {
  detail::check_qkv("linear_attention_chunked", q, k, v);
  TG_CHECK(chunk_size >= 1, "linear_attention_chunked: chunk_size must be >= 1, got {}", chunk_size);
  const int64_t T = q.size(2);
  Tensor S, z;  // the sums over all earlier chunks; undefined before the first
  std::vector<Tensor> ys;
  for (int64_t s = 0; s < T; s += chunk_size) {
    const int64_t L = std::min(chunk_size, T - s);
    Tensor qc = q.narrow(2, s, L), kc = k.narrow(2, s, L), vc = v.narrow(2, s, L);
    Tensor A = tril(matmul(qc, kc.transpose(-1, -2)));  // [B, H, L, L], causal inside the chunk
    Tensor num = matmul(A, vc), den = sum(A, {-1}, true);
    if (S.defined()) {
      num = num + matmul(qc, S);
      den = den + matmul(qc, z.unsqueeze(-1));
    }
    ys.push_back(num / (den + eps));
    Tensor dS = matmul(kc.transpose(-1, -2), vc), dz = sum(kc, {2});
    S = S.defined() ? S + dS : dS;
    z = z.defined() ? z + dz : dz;
  }
  if (ys.empty()) return zeros(v.sizes(), v.options());
  return ys.size() == 1 ? ys[0] : cat(ys, 2);
}

}  // namespace functional

namespace F = functional;

LinearAttention::LinearAttention(int64_t dm, int64_t h, int64_t chunk, double e, TensorOptions opt)
    : d_model(dm), n_heads(h), chunk_size(chunk), eps(e) {
  TG_CHECK(dm > 0 && h > 0 && dm % h == 0, "LinearAttention: d_model ({}) must be a positive multiple of n_heads ({})",
           dm, h);
  TG_CHECK(chunk >= 1, "LinearAttention: chunk_size must be >= 1, got {}", chunk);
  q_proj = register_module("q_proj", std::make_shared<Linear>(dm, dm, false, opt));
  k_proj = register_module("k_proj", std::make_shared<Linear>(dm, dm, false, opt));
  v_proj = register_module("v_proj", std::make_shared<Linear>(dm, dm, false, opt));
  o_proj = register_module("o_proj", std::make_shared<Linear>(dm, dm, false, opt));
}

std::tuple<Tensor, Tensor, Tensor> LinearAttention::project(const Tensor& x) const {
  Tensor q = F::elu_feature_map(detail::split_heads(q_proj->forward(x), n_heads));
  Tensor k = F::elu_feature_map(detail::split_heads(k_proj->forward(x), n_heads));
  return {q, k, detail::split_heads(v_proj->forward(x), n_heads)};
}

Tensor LinearAttention::forward(const Tensor& x) {
  detail::check_sequence("LinearAttention", x, d_model);
  auto [q, k, v] = project(x);
  return o_proj->forward(detail::merge_heads(F::linear_attention_chunked(q, k, v, chunk_size, eps)));
}

Tensor LinearAttention::forward_recurrent(const Tensor& x) {
  detail::check_sequence("LinearAttention", x, d_model);
  auto [q, k, v] = project(x);
  return o_proj->forward(detail::merge_heads(F::linear_attention_recurrent(q, k, v, eps)));
}

std::tuple<Tensor, LinearAttentionState> LinearAttention::step(const Tensor& x_t, const LinearAttentionState& st) {
  detail::check_step("LinearAttention.step", x_t, d_model);
  auto [q, k, v] = project(x_t.unsqueeze(1));
  auto [y, next] = F::linear_attention_step(q.select(2, 0), k.select(2, 0), v.select(2, 0), st, eps);
  return {o_proj->forward(y.reshape({x_t.size(0), d_model})), next};
}

}  // namespace tg::nn
