// Transformer blocks (pre-norm; LayerNorm or RMSNorm; GELU MLP or SwiGLU; any UnaryModule as the feed-forward),
// the bidirectional encoder block, and the decoder-only GPT with learned, sinusoidal or rotary positions, optional
// weight tying, and generation through the KV cache. See docs/attention.md.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "nn/generation.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "nn/multihead_attention.h"

namespace tg::nn {

// x -> c_proj(gelu(c_fc(x))), hidden = 4 d_model: GPT-2's MLP.
class MLP : public UnaryModule {
 public:
  MLP(int64_t d_model, int64_t hidden, bool bias = true, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Linear> c_fc, c_proj;
};

// x -> w2(silu(w1 x) * w3 x) (Shazeer 2020, as LLaMA), without biases.
class SwiGLU : public UnaryModule {
 public:
  SwiGLU(int64_t d_model, int64_t hidden, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Linear> w1, w2, w3;
};

struct TransformerBlockOptions {
  int64_t d_model = 128, n_head = 4, n_kv_head = 0;  // 0: n_head
  std::string norm = "layer";   // "layer" | "rms"
  std::string mlp = "gelu";     // "gelu" (hidden 4 d) | "swiglu" (hidden 8 d / 3, rounded up to a multiple of 8)
  bool rope = false;
  bool causal = true;           // false: the encoder block of a bidirectional model
  bool bias = true;             // in the attention and GELU MLP projections
  double dropout = 0.0;         // attention weights and both residual branches
  std::shared_ptr<UnaryModule> ffn;  // when set, replaces the MLP (an nn::MoE, say)
};

// Pre-norm block: x = x + drop(attn(norm_1(x))); x = x + drop(mlp(norm_2(x))).
class TransformerBlock : public Module {
 public:
  explicit TransformerBlock(const TransformerBlockOptions& options, TensorOptions opt = {});
  // x [B, T, d]. attn_mask in SDPA's convention (bool true = attend), e.g. a key padding mask [B, 1, 1, T].
  Tensor forward(const Tensor& x, const Tensor& attn_mask = {}, KVCache* cache = nullptr);
  TransformerBlockOptions options;
  std::shared_ptr<UnaryModule> ln_1, ln_2, mlp;
  std::shared_ptr<MultiheadAttention> attn;
  std::shared_ptr<Dropout> drop;
};

// The bidirectional (encoder) block: a TransformerBlock with causal = false; its forward takes a key padding mask
// [B, T] (bool, true = padding, as PyTorch's src_key_padding_mask).
class TransformerEncoderBlock : public TransformerBlock {
 public:
  explicit TransformerEncoderBlock(TransformerBlockOptions options, TensorOptions opt = {});
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask = {});
};

struct GPTConfig {
  int64_t vocab_size = 65, context = 64, d_model = 128, n_layer = 4, n_head = 4;
  int64_t n_kv_head = 0;        // 0: n_head
  std::string norm = "layer";   // "layer" | "rms"
  std::string mlp = "gelu";     // "gelu" | "swiglu"
  std::string pos = "learned";  // "learned" | "sinusoidal" | "rope"
  bool tie_weights = false;     // lm_head.weight is wte.weight
  double dropout = 0.0;
  bool bias = true;
  // When set, block `layer` uses the module it returns as its feed-forward instead of the MLP.
  std::function<std::shared_ptr<UnaryModule>(int layer)> ffn_factory;
};

// Decoder-only transformer: wte (+ wpe) -> blocks -> ln_f -> lm_head. Initialised with PyTorch's defaults for each
// layer (as torch_peer.py's GPT), the attention projections included.
class GPT : public Module {
 public:
  explicit GPT(GPTConfig config, TensorOptions opt = {});
  // idx int64 [B, T] -> logits [B, T, vocab]. With caches (one per layer, from make_caches; inference only), idx
  // holds the positions after those already cached.
  Tensor forward(const Tensor& idx, std::vector<KVCache>* caches = nullptr);
  std::vector<KVCache> make_caches(int64_t batch) const;
  // Appends max_new_tokens sampled tokens to idx [B, T0] (T0 >= 1), decoding through the KV cache, without grad and
  // in eval mode (the mode is restored). Once the context is full, the cache is rebuilt from the last context / 2
  // tokens (so that learned positions stay in range), as a sliding window.
  Tensor generate(const Tensor& idx, int64_t max_new_tokens, const SamplingOptions& sampling = {},
                  Generator& gen = default_generator());

  GPTConfig config;
  std::shared_ptr<Embedding> wte, wpe;  // wpe only with learned positions
  Tensor pos_table;                      // sinusoidal positions [context, d] (a non-persistent buffer)
  std::shared_ptr<ModuleList> blocks;
  std::shared_ptr<UnaryModule> ln_f;
  std::shared_ptr<Linear> lm_head;
  std::shared_ptr<Dropout> drop;
  std::vector<std::shared_ptr<TransformerBlock>> block_list;  // blocks, typed
};

}  // namespace tg::nn
