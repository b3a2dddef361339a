// scaled_dot_product_attention: the fused op (one recorded node over Backend::attention_forward / _backward) and
// its reference composition of tg ops, which tests/test_attention.cpp checks it against. See docs/attention.md.
#include <cmath>
#include <limits>

#include "autograd/functions/common.h"
#include "core/random.h"
#include "nn/detail.h"
#include "nn/functional.h"

namespace tg::nn::functional {

using autograd::Node;
using namespace tg::nn::detail;

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

// q, k, v (and the mask) checked and brought to 4-d [B, heads, rows, width]; `squeeze` says the inputs were 3-d.
struct Args {
  Tensor q, k, v, mask;
  bool squeeze = false;
  double scale = 1;
};

Tensor unit_last(const Tensor& t) {  // the kernel needs only the last dim dense
  if (t.dim() == 0 || t.stride(-1) == 1 || t.size(-1) <= 1) return t;
  return dense(t);
}

Args check_args(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double dropout_p,
                std::optional<double> scale) {
  check_floating(kOp, "query", q);
  check_floating(kOp, "key", k);
  check_floating(kOp, "value", v);
  TG_CHECK(q.dim() == k.dim() && q.dim() == v.dim() && (q.dim() == 3 || q.dim() == 4),
           "{}: query, key and value must all be 4-d [B, H, T, D] (or 3-d [B, T, D]), got {}, {}, {}", kOp,
           shape_str(q.sizes()), shape_str(k.sizes()), shape_str(v.sizes()));
  TG_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "{}: query, key, value dtypes differ: {}, {}, {}", kOp,
           dtype_name(q.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype()));
  tg::detail::check_same_device(kOp, q, k);
  tg::detail::check_same_device(kOp, q, v);
  TG_CHECK(dropout_p >= 0 && dropout_p < 1, "{}: dropout_p must be in [0, 1), got {}", kOp, dropout_p);
  Args a;
  a.squeeze = q.dim() == 3;
  a.q = a.squeeze ? q.unsqueeze(1) : q;
  a.k = a.squeeze ? k.unsqueeze(1) : k;
  a.v = a.squeeze ? v.unsqueeze(1) : v;
  const int64_t B = a.q.size(0), H = a.q.size(1), T = a.q.size(2), D = a.q.size(3);
  const int64_t Hkv = a.k.size(1), S = a.k.size(2);
  TG_CHECK(a.k.size(0) == B && a.v.size(0) == B && a.k.size(3) == D && a.v.size(1) == Hkv && a.v.size(2) == S,
           "{}: shapes do not fit: query {} (B, H, T, D), key {} and value {} must be (B, Hkv, S, D) and "
           "(B, Hkv, S, Dv)",
           kOp, shape_str(q.sizes()), shape_str(k.sizes()), shape_str(v.sizes()));
  TG_CHECK(Hkv > 0 ? H % Hkv == 0 : H == 0, "{}: {} query heads are not a multiple of {} key/value heads", kOp, H,
           Hkv);
  if (mask.defined()) {
    TG_CHECK(mask.dtype() == kBool || mask.dtype() == q.dtype(),
             "{}: attn_mask must be bool or the query's dtype {}, got {}", kOp, dtype_name(q.dtype()),
             dtype_name(mask.dtype()));
    TG_CHECK(!(mask.requires_grad() && GradMode::is_enabled()),
             "{}: a float attn_mask that requires grad is not supported (no gradient flows to the mask); detach it",
             kOp);
    const Shape full{B, H, T, S};
    Shape bs = broadcast_shapes(mask.sizes(), full, kOp);
    TG_CHECK(bs == full, "{}: attn_mask of shape {} does not broadcast to [B, H, T, S] = {}", kOp,
             shape_str(mask.sizes()), shape_str(full));
    a.mask = tg::detail::raw_broadcast(mask, full);
  }
  a.scale = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(D));
  return a;
}

}  // namespace

Tensor scaled_dot_product_attention_seeded(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                           double dropout_p, bool is_causal, std::optional<double> scale,
                                           uint64_t dropout_seed) {
  Args a = check_args(q, k, v, attn_mask, dropout_p, scale);
  const int64_t B = a.q.size(0), H = a.q.size(1), T = a.q.size(2), Dv = a.v.size(3);
  AttentionTensors t;
  t.q = unit_last(a.q);
  t.k = unit_last(a.k);
  t.v = unit_last(a.v);
  t.mask = a.mask;
  t.causal = is_causal;
  t.scale = a.scale;
  t.dropout_p = dropout_p;
  t.dropout_seed = dropout_seed;
  // [B, T, H, Dv] storage seen as [B, H, T, Dv]: merging heads afterwards is a free view.
  Tensor buf = empty({B, T, H, Dv}, q.options());
  t.out = tg::detail::raw_view(buf, {B, H, T, Dv}, {T * H * Dv, Dv, H * Dv, 1}, buf.storage_offset());
  t.lse = empty({B, H, T}, q.options());
  backend_for(q).attention_forward(t);
  Tensor out = t.out;

  if (autograd::needs_grad({a.q, a.k, a.v})) {
    std::vector<Tensor> saved{t.q, t.k, t.v, t.out, t.lse};
    if (t.mask.defined()) saved.push_back(t.mask);
    const bool rq = a.q.requires_grad(), rk = a.k.requires_grad(), rv = a.v.requires_grad();
    autograd::record(kOp, out, {a.q, a.k, a.v}, std::move(saved),
                     [=, causal = is_causal, sc = a.scale](const Tensor& g, const Node& n) {
                       AttentionTensors s;
                       s.q = n.saved_tensor(0), s.k = n.saved_tensor(1), s.v = n.saved_tensor(2);
                       s.out = n.saved_tensor(3), s.lse = n.saved_tensor(4);
                       if (n.saved.size() > 5) s.mask = n.saved_tensor(5);
                       s.causal = causal;
                       s.scale = sc;
                       s.dropout_p = dropout_p;
                       s.dropout_seed = dropout_seed;
                       Tensor gq = empty(s.q.sizes(), s.q.options()), gk = empty(s.k.sizes(), s.k.options()),
                              gv = empty(s.v.sizes(), s.v.options());
                       backend_for(s.q).attention_backward(s, unit_last(g), gq, gk, gv);
                       return std::vector<Tensor>{rq ? gq : Tensor(), rk ? gk : Tensor(), rv ? gv : Tensor()};
                     });
  }
  return a.squeeze ? out.squeeze(1) : out;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale) {
  const uint64_t seed = dropout_p > 0 ? default_generator().next_u64() : 0;
  return scaled_dot_product_attention_seeded(q, k, v, attn_mask, dropout_p, is_causal, scale, seed);
}

Tensor attention_dropout_mask(uint64_t seed, int64_t B, int64_t H, int64_t T, int64_t S, double p) {
  Tensor m = empty({B, H, T, S}, kBool);
  bool* pm = m.data<bool>();
  for (int64_t i = 0; i < m.numel(); ++i) pm[i] = attention_dropout_keep(seed, static_cast<uint64_t>(i), p);
  return m;
}

Tensor scaled_dot_product_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const Tensor& attn_mask, double dropout_p, bool is_causal,
                                              std::optional<double> scale, uint64_t dropout_seed) {
  Args a = check_args(q, k, v, attn_mask, dropout_p, scale);
  const int64_t B = a.q.size(0), H = a.q.size(1), T = a.q.size(2), S = a.k.size(2), Hkv = a.k.size(1);
  Tensor kk = a.k, vv = a.v;
  if (Hkv != H) {  // each kv head serves H / Hkv consecutive query heads
    const int64_t g = H / Hkv;
    kk = a.k.unsqueeze(2).expand({B, Hkv, g, S, a.k.size(3)}).reshape({B, H, S, a.k.size(3)});
    vv = a.v.unsqueeze(2).expand({B, Hkv, g, S, a.v.size(3)}).reshape({B, H, S, a.v.size(3)});
  }
  const double inf = std::numeric_limits<double>::infinity();
  Tensor s = matmul(a.q, kk.transpose(-2, -1)) * a.scale;
  if (is_causal) {
    Tensor future = gt(arange(static_cast<double>(S)).reshape({1, S}), arange(static_cast<double>(T)).reshape({T, 1}));
    s = masked_fill(s, future, -inf);
  }
  if (attn_mask.defined()) s = attn_mask.dtype() == kBool ? masked_fill(s, logical_not(attn_mask), -inf) : s + attn_mask;
  Tensor p = softmax(s, -1);
  if (dropout_p > 0) {
    Tensor keep = attention_dropout_mask(dropout_seed, B, H, T, S, dropout_p).to(q.dtype());
    p = p * keep * (1.0 / (1.0 - dropout_p));
  }
  Tensor out = matmul(p, vv);
  return a.squeeze ? out.squeeze(1) : out;
}

}  // namespace tg::nn::functional
