// MultiheadAttention (PyTorch's parameters and forward, and the self-attention path with RoPE and a KV cache), the
// rotary and sinusoidal position encodings. Every product goes through F::linear and the fused attention op.
#include "nn/multihead_attention.h"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "nn/init.h"

namespace tg::nn {

namespace F = functional;

// ---- positions

namespace {
// angle[p, i] = (pos0 + p) * base^(-2i / dim) for i < dim / 2, in float64 so that long positions stay exact.
Tensor angles(int64_t pos0, int64_t length, int64_t dim, double base) {
  Tensor pos = arange(static_cast<double>(pos0), static_cast<double>(pos0 + length), 1, kFloat64).reshape({length, 1});
  Tensor i = arange(0, static_cast<double>(dim / 2), 1, kFloat64).reshape({1, dim / 2});
  return pos * exp(i * (-2.0 * std::log(base) / static_cast<double>(dim)));
}
}  // namespace

Tensor apply_rotary(const Tensor& x, int64_t pos0, double base) {
  TG_CHECK(x.defined() && x.dim() >= 2 && x.size(-1) % 2 == 0,
           "apply_rotary: input must be [..., T, D] with D even, got {}",
           x.defined() ? shape_str(x.sizes()) : "undefined");
  const int64_t T = x.size(-2), D = x.size(-1), half = D / 2;
  Tensor cos_t, sin_t;
  {
    NoGradGuard g;
    Tensor a = angles(pos0, T, D, base);
    cos_t = cos(a).to(x.dtype());
    sin_t = sin(a).to(x.dtype());
  }
  Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return cat({x1 * cos_t - x2 * sin_t, x1 * sin_t + x2 * cos_t}, -1);
}

Tensor sinusoidal_positions(int64_t length, int64_t dim, TensorOptions opt) {
  TG_CHECK(length >= 0 && dim > 0 && dim % 2 == 0,
           "sinusoidal_positions: need length >= 0 and an even dim, got {} and {}", length, dim);
  NoGradGuard g;
  Tensor a = angles(0, length, dim, 10000.0);
  // interleaved: column 2i is sin, column 2i + 1 is cos
  return stack({sin(a), cos(a)}, -1).reshape({length, dim}).to(opt.dtype_);
}

// ---- MultiheadAttention

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& o, TensorOptions opt) : options(o) {
  const char* op = "MultiheadAttention";
  if (options.num_kv_heads == 0) options.num_kv_heads = options.num_heads;
  const int64_t E = options.embed_dim, H = options.num_heads, Hkv = options.num_kv_heads;
  TG_CHECK(E > 0 && H > 0 && E % H == 0, "{}: embed_dim {} must be a positive multiple of num_heads {}", op, E, H);
  TG_CHECK(Hkv > 0 && H % Hkv == 0, "{}: num_heads {} must be a multiple of num_kv_heads {}", op, H, Hkv);
  TG_CHECK(options.dropout >= 0 && options.dropout < 1, "{}: dropout must be in [0, 1), got {}", op, options.dropout);
  head_dim = E / H;
  TG_CHECK(!options.rope || head_dim % 2 == 0, "{}: RoPE needs an even head dim, got {}", op, head_dim);
  TensorOptions p = opt.requires_grad(false);
  in_proj_weight = register_parameter("in_proj_weight", empty({(H + 2 * Hkv) * head_dim, E}, p));
  if (options.bias) in_proj_bias = register_parameter("in_proj_bias", empty({(H + 2 * Hkv) * head_dim}, p));
  out_proj = register_module("out_proj", std::make_shared<Linear>(E, E, options.bias, opt));
  reset_parameters();
}

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout, bool bias,
                                       bool batch_first, TensorOptions opt)
    : MultiheadAttention(MultiheadAttentionOptions{.embed_dim = embed_dim, .num_heads = num_heads,
                                                   .dropout = dropout, .bias = bias, .batch_first = batch_first},
                         opt) {}

void MultiheadAttention::reset_parameters() {
  init::xavier_uniform_(in_proj_weight);
  if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
  if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
}

Tensor MultiheadAttention::heads(const Tensor& t, int64_t n) const {
  return t.view({t.size(0), t.size(1), n, head_dim}).transpose(1, 2);
}

Tensor MultiheadAttention::merge(const Tensor& o) const {
  return o.transpose(1, 2).reshape({o.size(0), o.size(2), options.embed_dim});
}

KVCache MultiheadAttention::make_cache(int64_t batch, int64_t capacity) const {
  TensorOptions o = in_proj_weight.options().requires_grad(false);
  return {zeros({batch, options.num_kv_heads, capacity, head_dim}, o),
          zeros({batch, options.num_kv_heads, capacity, head_dim}, o), 0};
}

Tensor MultiheadAttention::self_attention(const Tensor& x, const Tensor& attn_mask, bool is_causal, KVCache* cache) {
  const char* op = "MultiheadAttention";
  TG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == options.embed_dim,
           "{}: self_attention input must be [B, T, {}], got {}", op, options.embed_dim,
           x.defined() ? shape_str(x.sizes()) : "undefined");
  const int64_t H = options.num_heads, Hkv = options.num_kv_heads, T = x.size(1);
  Tensor qkv = F::linear(x, in_proj_weight, in_proj_bias);
  auto parts = tg::split(qkv, std::vector<int64_t>{H * head_dim, Hkv * head_dim, Hkv * head_dim}, 2);
  const int64_t pos0 = cache ? cache->len : 0;
  Tensor q = heads(parts[0], H), k = heads(parts[1], Hkv), v = heads(parts[2], Hkv);
  if (options.rope) {
    q = apply_rotary(q, pos0, options.rope_base);
    k = apply_rotary(k, pos0, options.rope_base);
  }
  Tensor mask = attn_mask;
  bool causal = is_causal;
  if (cache) {
    TG_CHECK(!GradMode::is_enabled(), "{}: a KV cache is for inference; run it under NoGradGuard", op);
    TG_CHECK(cache->k.defined() && cache->k.size(0) == x.size(0) && cache->len + T <= cache->k.size(2),
             "{}: the KV cache (batch {}, {} of {} positions used) cannot take {} more positions of batch {}", op,
             cache->k.defined() ? cache->k.size(0) : 0, cache->len, cache->k.defined() ? cache->k.size(2) : 0, T,
             x.size(0));
    cache->k.narrow(2, pos0, T).copy_(k);
    cache->v.narrow(2, pos0, T).copy_(v);
    cache->len += T;
    k = cache->k.narrow(2, 0, cache->len);
    v = cache->v.narrow(2, 0, cache->len);
    // The new rows sit at positions pos0 .. pos0 + T - 1: causality aligned to the bottom right, which is
    // PyTorch's top-left is_causal only when pos0 = 0. One new row sees every cached key: no mask at all.
    if (is_causal && pos0 > 0) causal = false;
    if (is_causal && pos0 > 0 && T > 1) {
      Tensor allowed = le(arange(static_cast<double>(cache->len)).reshape({1, cache->len}),
                          arange(static_cast<double>(pos0), static_cast<double>(pos0 + T)).reshape({T, 1}));
      if (!mask.defined()) mask = allowed;
      else if (mask.dtype() == kBool) mask = logical_and(mask, allowed);
      else mask = masked_fill(mask, logical_not(allowed), -std::numeric_limits<double>::infinity());
    }
  }
  const double p = is_training() ? options.dropout : 0.0;
  Tensor o = F::scaled_dot_product_attention(q, k, v, mask, p, causal);
  return out_proj->forward(merge(o));
}

namespace {
// A PyTorch-convention mask (bool true = masked) as an additive float mask of dtype dt.
Tensor additive(const Tensor& m, DType dt) {
  if (m.dtype() == kBool) return masked_fill(zeros(m.sizes(), dt), m, -std::numeric_limits<double>::infinity());
  return m;
}
}  // namespace

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& key_padding_mask, const Tensor& attn_mask) {
  const char* op = "MultiheadAttention";
  TG_CHECK(options.num_kv_heads == options.num_heads && !options.rope,
           "{}: forward(query, key, value) is PyTorch's layer; grouped-query heads and RoPE use self_attention", op);
  TG_CHECK(query.defined() && key.defined() && value.defined(), "{}: query, key and value must be defined", op);
  const int64_t E = options.embed_dim, H = options.num_heads;
  const bool unbatched = query.dim() == 2;
  TG_CHECK(query.dim() == key.dim() && key.dim() == value.dim() && (unbatched || query.dim() == 3),
           "{}: query, key, value must be 3-d (or 2-d unbatched), got {}, {}, {}", op, shape_str(query.sizes()),
           shape_str(key.sizes()), shape_str(value.sizes()));
  // -> [B, T, E]
  auto bt = [&](const Tensor& t) { return unbatched ? t.unsqueeze(0) : options.batch_first ? t : t.transpose(0, 1); };
  Tensor q_in = bt(query), k_in = bt(key), v_in = bt(value);
  TG_CHECK(q_in.size(2) == E && k_in.size(2) == E && v_in.size(2) == E && k_in.sizes() == v_in.sizes() &&
               q_in.size(0) == k_in.size(0),
           "{}: embed_dim is {}, got query {}, key {}, value {}", op, E, shape_str(query.sizes()),
           shape_str(key.sizes()), shape_str(value.sizes()));
  const int64_t B = q_in.size(0), T = q_in.size(1), S = k_in.size(1);
  auto w = [&](int64_t i) { return in_proj_weight.narrow(0, i * E, E); };
  auto b = [&](int64_t i) { return in_proj_bias.defined() ? in_proj_bias.narrow(0, i * E, E) : Tensor(); };
  Tensor q = heads(F::linear(q_in, w(0), b(0)), H), k = heads(F::linear(k_in, w(1), b(1)), H),
         v = heads(F::linear(v_in, w(2), b(2)), H);
  Tensor mask;
  if (attn_mask.defined()) {
    TG_CHECK(attn_mask.sizes() == Shape({T, S}) || attn_mask.sizes() == Shape({B * H, T, S}),
             "{}: attn_mask must be [{}, {}] or [{}, {}, {}], got {}", op, T, S, B * H, T, S,
             shape_str(attn_mask.sizes()));
    mask = additive(attn_mask, q.dtype());
    if (mask.dim() == 3) mask = mask.reshape({B, H, T, S});
  }
  if (key_padding_mask.defined()) {
    Tensor kpm = unbatched ? key_padding_mask.reshape({1, -1}) : key_padding_mask;
    TG_CHECK(kpm.sizes() == Shape({B, S}), "{}: key_padding_mask must be [{}, {}], got {}", op, B, S,
             shape_str(key_padding_mask.sizes()));
    Tensor kp = additive(kpm, q.dtype()).reshape({B, 1, 1, S});
    mask = mask.defined() ? mask + kp : kp;
  }
  const double p = is_training() ? options.dropout : 0.0;
  Tensor o = out_proj->forward(merge(F::scaled_dot_product_attention(q, k, v, mask, p)));
  return unbatched ? o.squeeze(0) : options.batch_first ? o : o.transpose(0, 1);
}

}  // namespace tg::nn
