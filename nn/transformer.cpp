// The MLPs, the transformer blocks and GPT (nn/transformer.h).
#include "nn/transformer.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "nn/init.h"

namespace tg::nn {

namespace F = functional;

// ---- feed-forwards

MLP::MLP(int64_t d, int64_t hidden, bool bias, TensorOptions opt) {
  c_fc = register_module("c_fc", std::make_shared<Linear>(d, hidden, bias, opt));
  c_proj = register_module("c_proj", std::make_shared<Linear>(hidden, d, bias, opt));
}

Tensor MLP::forward(const Tensor& x) { return c_proj->forward(gelu(c_fc->forward(x))); }

SwiGLU::SwiGLU(int64_t d, int64_t hidden, TensorOptions opt) {
  w1 = register_module("w1", std::make_shared<Linear>(d, hidden, false, opt));
  w2 = register_module("w2", std::make_shared<Linear>(hidden, d, false, opt));
  w3 = register_module("w3", std::make_shared<Linear>(d, hidden, false, opt));
}

Tensor SwiGLU::forward(const Tensor& x) { return w2->forward(silu(w1->forward(x)) * w3->forward(x)); }

// ---- blocks

namespace {

std::shared_ptr<UnaryModule> make_norm(const std::string& kind, int64_t d, TensorOptions opt) {
  if (kind == "layer") return std::make_shared<LayerNorm>(Shape{d}, 1e-5, true, true, opt);
  if (kind == "rms") return std::make_shared<RMSNorm>(Shape{d}, std::nullopt, true, opt);
  TG_ERROR("TransformerBlock: norm must be \"layer\" or \"rms\", got \"{}\"", kind);
}

std::shared_ptr<UnaryModule> make_mlp(const TransformerBlockOptions& o, TensorOptions opt) {
  if (o.ffn) return o.ffn;
  if (o.mlp == "gelu") return std::make_shared<MLP>(o.d_model, 4 * o.d_model, o.bias, opt);
  if (o.mlp == "swiglu") return std::make_shared<SwiGLU>(o.d_model, (8 * o.d_model / 3 + 7) / 8 * 8, opt);
  TG_ERROR("TransformerBlock: mlp must be \"gelu\" or \"swiglu\", got \"{}\"", o.mlp);
}

}  // namespace

TransformerBlock::TransformerBlock(const TransformerBlockOptions& o, TensorOptions opt) : options(o) {
  ln_1 = register_module("ln_1", make_norm(o.norm, o.d_model, opt));
  attn = register_module("attn", std::make_shared<MultiheadAttention>(
                                     MultiheadAttentionOptions{.embed_dim = o.d_model, .num_heads = o.n_head,
                                                               .num_kv_heads = o.n_kv_head, .dropout = o.dropout,
                                                               .bias = o.bias, .batch_first = true, .rope = o.rope},
                                     opt));
  ln_2 = register_module("ln_2", make_norm(o.norm, o.d_model, opt));
  mlp = register_module("mlp", make_mlp(o, opt));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerBlock::forward(const Tensor& x, const Tensor& attn_mask, KVCache* cache) {
  Tensor a = attn->self_attention(ln_1->forward(x), attn_mask, options.causal, cache);
  Tensor h = x + (options.dropout > 0 ? drop->forward(a) : a);
  Tensor m = mlp->forward(ln_2->forward(h));
  return h + (options.dropout > 0 ? drop->forward(m) : m);
}

namespace {
TransformerBlockOptions bidirectional(TransformerBlockOptions o) {
  o.causal = false;
  return o;
}
}  // namespace

TransformerEncoderBlock::TransformerEncoderBlock(TransformerBlockOptions o, TensorOptions opt)
    : TransformerBlock(bidirectional(std::move(o)), opt) {}

Tensor TransformerEncoderBlock::forward(const Tensor& x, const Tensor& key_padding_mask) {
  Tensor mask;
  if (key_padding_mask.defined()) {
    TG_CHECK(key_padding_mask.dtype() == kBool && key_padding_mask.dim() == 2 && x.dim() == 3 &&
                 key_padding_mask.size(0) == x.size(0) && key_padding_mask.size(1) == x.size(1),
             "TransformerEncoderBlock: key_padding_mask must be bool [B, T] = [{}, {}], got {} {}", x.size(0),
             x.dim() > 1 ? x.size(1) : 0, dtype_name(key_padding_mask.dtype()), shape_str(key_padding_mask.sizes()));
    mask = logical_not(key_padding_mask).reshape({x.size(0), 1, 1, x.size(1)});
  }
  return TransformerBlock::forward(x, mask);
}

// ---- GPT

GPT::GPT(GPTConfig c, TensorOptions opt) : config(std::move(c)) {
  const char* op = "GPT";
  TG_CHECK(config.vocab_size > 0 && config.context > 0 && config.n_layer >= 0, "{}: bad config (vocab {}, context {})",
           op, config.vocab_size, config.context);
  TG_CHECK(config.pos == "learned" || config.pos == "sinusoidal" || config.pos == "rope",
           "{}: pos must be \"learned\", \"sinusoidal\" or \"rope\", got \"{}\"", op, config.pos);
  const int64_t C = config.d_model;
  wte = register_module("wte", std::make_shared<Embedding>(config.vocab_size, C, std::nullopt, opt));
  if (config.pos == "learned") wpe = register_module("wpe", std::make_shared<Embedding>(config.context, C, std::nullopt, opt));
  if (config.pos == "sinusoidal")
    pos_table = register_buffer("pos_table", sinusoidal_positions(config.context, C, opt), false);
  drop = register_module("drop", std::make_shared<Dropout>(config.dropout));
  blocks = register_module("blocks", std::make_shared<ModuleList>());
  for (int64_t l = 0; l < config.n_layer; ++l) {
    TransformerBlockOptions bo{.d_model = C, .n_head = config.n_head, .n_kv_head = config.n_kv_head,
                               .norm = config.norm, .mlp = config.mlp, .rope = config.pos == "rope",
                               .causal = true, .bias = config.bias, .dropout = config.dropout};
    if (config.ffn_factory) bo.ffn = config.ffn_factory(static_cast<int>(l));
    auto b = blocks->push_back(std::make_shared<TransformerBlock>(bo, opt));
    // PyTorch's nn.Linear init for the fused q/k/v projection, as a GPT written with nn.Linear(C, 3C) has.
    const double bound = 1.0 / std::sqrt(static_cast<double>(C));
    init::uniform_(b->attn->in_proj_weight, -bound, bound);
    if (b->attn->in_proj_bias.defined()) init::uniform_(b->attn->in_proj_bias, -bound, bound);
    b->attn->out_proj->reset_parameters();
    block_list.push_back(b);
  }
  if (config.norm == "rms") ln_f = register_module("ln_f", std::make_shared<RMSNorm>(Shape{C}, std::nullopt, true, opt));
  else ln_f = register_module("ln_f", std::make_shared<LayerNorm>(Shape{C}, 1e-5, true, true, opt));
  lm_head = register_module("lm_head", std::make_shared<Linear>(C, config.vocab_size, false, opt));
  if (config.tie_weights) lm_head->weight = lm_head->set_parameter("weight", wte->weight);
}

std::vector<KVCache> GPT::make_caches(int64_t batch) const {
  std::vector<KVCache> cs;
  for (auto& b : block_list) cs.push_back(b->attn->make_cache(batch, config.context));
  return cs;
}

Tensor GPT::forward(const Tensor& idx, std::vector<KVCache>* caches) {
  TG_CHECK(idx.defined() && idx.dtype() == kInt64 && idx.dim() == 2, "GPT: input must be int64 [B, T], got {} {}",
           idx.defined() ? dtype_name(idx.dtype()) : "undefined", idx.defined() ? shape_str(idx.sizes()) : "");
  const int64_t T = idx.size(1);
  TG_CHECK(!caches || caches->size() == block_list.size(), "GPT: {} caches for {} layers", caches ? caches->size() : 0,
           block_list.size());
  const int64_t pos0 = caches && !caches->empty() ? (*caches)[0].len : 0;
  TG_CHECK(pos0 + T <= config.context, "GPT: positions {}..{} exceed the context {}", pos0, pos0 + T - 1,
           config.context);
  Tensor x = wte->forward(idx);
  if (wpe) x = x + wpe->weight.narrow(0, pos0, T);
  if (pos_table.defined()) x = x + pos_table.narrow(0, pos0, T);
  if (config.dropout > 0) x = drop->forward(x);
  for (size_t l = 0; l < block_list.size(); ++l) x = block_list[l]->forward(x, {}, caches ? &(*caches)[l] : nullptr);
  return lm_head->forward(ln_f->forward(x));
}

Tensor GPT::generate(const Tensor& idx, int64_t max_new_tokens, const SamplingOptions& sampling, Generator& gen) {
  TG_CHECK(idx.defined() && idx.dtype() == kInt64 && idx.dim() == 2 && idx.size(1) >= 1,
           "GPT::generate: idx must be int64 [B, T] with T >= 1");
  TG_CHECK(max_new_tokens >= 0, "GPT::generate: max_new_tokens must be >= 0, got {}", max_new_tokens);
  NoGradGuard ng;
  const bool was_training = is_training();
  eval();
  const int64_t B = idx.size(0);
  std::vector<KVCache> caches = make_caches(B);
  Tensor seq = idx;
  // Prefill with what fits, then one token per step; `next_in` is what the cache has not seen yet.
  auto window = [&](int64_t keep) { return seq.narrow(1, seq.size(1) - keep, keep); };
  Tensor next_in = window(std::min(seq.size(1), config.context));
  for (int64_t s = 0; s < max_new_tokens; ++s) {
    if (caches[0].len + next_in.size(1) > config.context) {  // full: restart from the recent half
      for (auto& c : caches) c.reset();
      next_in = window(std::min(seq.size(1), std::max<int64_t>(1, config.context / 2)));
    }
    Tensor logits = forward(next_in, &caches);
    Tensor tok = sample_next(logits.select(1, logits.size(1) - 1), sampling, gen).reshape({B, 1});
    seq = cat({seq, tok}, 1);
    next_in = tok;
  }
  train(was_training);
  return seq;
}

}  // namespace tg::nn
