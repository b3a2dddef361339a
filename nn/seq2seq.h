// Sequence-to-sequence with LSTMs (Sutskever et al. 2014) and attention over the encoder states: additive
// (Bahdanau et al. 2015) and multiplicative (Luong et al. 2015) scores; teacher-forced training in one pass,
// greedy and beam-search decoding. Beam search is generic over a step function, so the pointer network
// (nn/pointer_net.h) and tests with a hand-made model share it.
//
//   tg::nn::Seq2Seq model({.src_vocab = 12, .tgt_vocab = 12, .embed = 32, .hidden = 64, .attention = "dot"});
//   Tensor logits = model.forward(src, tgt_in);          // [B, T_tgt, V]: teacher forcing, tgt_in = BOS + target
//   auto best = model.beam_search(src.select(0, 0), 4, 20)[0].tokens;
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "nn/layers.h"
#include "nn/module.h"
#include "nn/rnn.h"

namespace tg::nn {

// ---- attention over keys [B, S, Dk] for queries [B, Tq, Dq]: scores [B, Tq, S], weights = softmax over S of the
// scores with invalid keys (mask [B, S] bool, true = valid) at -inf, context = weights @ keys [B, Tq, Dk].
class SeqAttention : public Module {
 public:
  virtual Tensor scores(const Tensor& query, const Tensor& keys) const = 0;
  // Returns (context, weights).
  std::tuple<Tensor, Tensor> forward(const Tensor& query, const Tensor& keys, const Tensor& mask = {}) const;
};

// Bahdanau's additive score: v^T tanh(W_q q + W_k k), with W_q [H, Dq], W_k [H, Dk] (no bias) and v [H].
class BahdanauAttention : public SeqAttention {
 public:
  BahdanauAttention(int64_t query_dim, int64_t key_dim, int64_t hidden, TensorOptions opt = {});
  Tensor scores(const Tensor& query, const Tensor& keys) const override;
  std::string name() const override { return "BahdanauAttention"; }
  std::shared_ptr<Linear> w_query, w_key, v;
};

// Luong's multiplicative score: q^T k ("dot", needs Dq == Dk) or q^T W k ("general", W [Dq, Dk]).
class LuongAttention : public SeqAttention {
 public:
  LuongAttention(int64_t query_dim, int64_t key_dim, bool general = false, TensorOptions opt = {});
  Tensor scores(const Tensor& query, const Tensor& keys) const override;
  std::string name() const override { return "LuongAttention"; }
  std::shared_ptr<Linear> w;  // null for "dot"
};

// ---- beam search, generic over the model.
struct Hypothesis {
  std::vector<int64_t> tokens;  // without the start token; ends with eos when it finished
  double score = 0;             // sum of log-probabilities
  double normalized = 0;        // score / length^length_penalty: what hypotheses are ranked by
};

// One decoding step for k live hypotheses: tokens [k] int64 (the last token of each) and parents [k] int64 (which
// row of the previous call each hypothesis extends; the model reorders its state with them). Returns
// log-probabilities [k, V].
using BeamStepFn = std::function<Tensor(const Tensor& tokens, const Tensor& parents)>;

// Keeps the `beam` best prefixes by summed log-probability, moving those that emit eos to the finished list, until
// `beam` hypotheses have finished (and no live prefix can still beat them) or max_len steps. Returns the finished
// hypotheses (the live ones too if none finished) best first. length_penalty alpha ranks by score / length^alpha.
std::vector<Hypothesis> beam_search(const BeamStepFn& step, int64_t start_token, int64_t eos, int64_t beam,
                                    int64_t max_len, double length_penalty = 0.0);

// ---- the encoder-decoder
struct Seq2SeqOptions {
  int64_t src_vocab = 0, tgt_vocab = 0;
  int64_t embed = 32, hidden = 64, num_layers = 1;
  std::string attention = "dot";  // "none", "additive" (Bahdanau), "dot" or "general" (Luong)
  bool reverse_source = false;    // Sutskever et al.: read the source backwards
  double dropout = 0.0;           // between LSTM layers
  int64_t bos = 1, eos = 2;       // target start and end tokens
};

// Encoder: Embedding -> LSTM over the source, whose final (h, c) of every layer starts the decoder. Decoder: an LSTM
// over the embedded previous target tokens; with attention, as Luong et al.: context c_t over the encoder outputs
// for the decoder output h_t, then h~_t = tanh(W_c [c_t; h_t]) and logits = W_out h~_t (without attention,
// logits = W_out h_t). The decoder LSTM does not read c_t, so teacher forcing runs it over the whole target in one
// fused call.
class Seq2Seq : public Module {
 public:
  explicit Seq2Seq(Seq2SeqOptions options, TensorOptions opt = {});
  // src [B, S] int64 (src_lengths [B] for padded batches), tgt_in [B, T] int64: the decoder inputs (BOS then the
  // target shifted right). Returns logits [B, T, tgt_vocab].
  Tensor forward(const Tensor& src, const Tensor& tgt_in, const Tensor& src_lengths = {});
  // Greedy decoding of a batch: [B, <= max_len] int64 tokens, eos included; rows that finished early are padded
  // with eos.
  Tensor greedy(const Tensor& src, int64_t max_len, const Tensor& src_lengths = {});
  // Beam search for one source sequence src [S].
  std::vector<Hypothesis> beam_search(const Tensor& src, int64_t beam, int64_t max_len, double length_penalty = 0.0);

  Seq2SeqOptions options;
  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<LSTM> encoder, decoder;
  std::shared_ptr<SeqAttention> attention;  // null for "none"
  std::shared_ptr<Linear> combine, out;     // combine: W_c [H, 2H] (with attention only)

  // The encoder's outputs [B, S, H], final state and key mask (for padded sources).
  struct Encoded {
    Tensor outputs, h, c, mask;
  };
  Encoded encode(const Tensor& src, const Tensor& src_lengths = {});
  // Logits [B, T, V] for decoder outputs dec [B, T, H] over the encoding.
  Tensor readout(const Tensor& dec, const Encoded& enc);
};

}  // namespace tg::nn
