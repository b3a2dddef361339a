// Multi-head attention and what goes with it: rotary and sinusoidal position encodings, and the KV cache for
// incremental decoding. The attention itself is nn::functional::scaled_dot_product_attention (nn/attention.cpp).
// See docs/attention.md.
#pragma once
#include <cstdint>
#include <optional>
#include <tuple>

#include "nn/layers.h"
#include "nn/module.h"

namespace tg::nn {

// Rotary position embedding (RoFormer, Su et al. 2021) of x [B, H, T, D] (D even) at positions pos0 .. pos0 + T - 1:
// each pair (x_i, x_{i + D/2}) is rotated by the angle pos * base^(-2i/D). The pairs are the halves of the head, as
// GPT-NeoX and LLaMA (HF) lay them out. A composition of tg ops, so it is differentiable.
Tensor apply_rotary(const Tensor& x, int64_t pos0 = 0, double base = 10000.0);

// The sinusoidal position table [length, dim] of "Attention is all you need": PE(p, 2i) = sin(p / 10000^(2i/dim)),
// PE(p, 2i + 1) = cos(p / 10000^(2i/dim)).
Tensor sinusoidal_positions(int64_t length, int64_t dim, TensorOptions opt = {});

// The keys and values one attention layer has seen so far, for decoding a token at a time: k, v [B, Hkv, capacity,
// head_dim] (the head dim after RoPE, which is applied before caching) and the number of positions filled.
struct KVCache {
  Tensor k, v;
  int64_t len = 0;
  void reset() { len = 0; }
};

struct MultiheadAttentionOptions {
  int64_t embed_dim = 0;
  int64_t num_heads = 1;
  int64_t num_kv_heads = 0;  // 0: num_heads. Fewer: grouped-query attention; 1: multi-query attention
  double dropout = 0.0;      // on the attention weights, in training mode
  bool bias = true;          // in_proj_bias and out_proj.bias
  bool batch_first = false;  // forward(query, key, value)'s layout, as PyTorch: [T, B, E] unless batch_first
  bool rope = false;         // rotate q and k (self_attention only)
  double rope_base = 10000.0;
};

// Multi-head attention with PyTorch's parameters: in_proj_weight [(H + 2 Hkv) d, E] (the rows of W_q, W_k, W_v
// stacked), in_proj_bias, out_proj (Linear(E, E)), with d = E / H. With num_kv_heads = num_heads the state_dict
// loads torch.nn.MultiheadAttention's; init as PyTorch (xavier_uniform_ in_proj, zero biases).
//   MultiheadAttention mha(64, 4);                                  // as torch.nn.MultiheadAttention(64, 4)
//   Tensor y = mha.self_attention(x, {}, /*is_causal=*/true);        // x [B, T, E], always batch-first
class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(const MultiheadAttentionOptions& options, TensorOptions opt = {});
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     bool batch_first = false, TensorOptions opt = {});

  // torch.nn.MultiheadAttention.forward with need_weights = False: query [T, B, E] ([B, T, E] if batch_first, or
  // unbatched [T, E]), key and value [S, B, E]. key_padding_mask [B, S] and attn_mask [T, S] or [B * H, T, S] follow
  // PyTorch: bool true (or a float -inf) means "may not attend", float values are added.
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& key_padding_mask = {},
                 const Tensor& attn_mask = {});

  // Self-attention of x [B, T, E] through one fused q/k/v projection. attn_mask is in SDPA's convention (bool true =
  // attend, or added), broadcast to [B, H, T, S]. With a cache (inference only, under NoGradGuard), x holds the new
  // positions: their keys and values are appended, and they attend to every cached position and causally among
  // themselves, so that decoding token by token gives the full forward's outputs.
  Tensor self_attention(const Tensor& x, const Tensor& attn_mask = {}, bool is_causal = false,
                        KVCache* cache = nullptr);

  // An empty cache for batch B and up to `capacity` positions.
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  void reset_parameters();
  MultiheadAttentionOptions options;
  int64_t head_dim;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;

 private:
  Tensor heads(const Tensor& t, int64_t n) const;  // [B, T, n d] -> [B, n, T, d]
  Tensor merge(const Tensor& o) const;             // [B, H, T, d] -> [B, T, H d]
};

}  // namespace tg::nn
