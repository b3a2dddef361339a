// Attention over encoder states (Bahdanau's additive and Luong's multiplicative scores), the generic beam search,
// and the LSTM encoder-decoder with teacher forcing, greedy and beam decoding.
#include "nn/seq2seq.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace tg::nn {

// ---- attention
std::tuple<Tensor, Tensor> SeqAttention::forward(const Tensor& query, const Tensor& keys, const Tensor& mask) const {
  TG_CHECK(query.dim() == 3 && keys.dim() == 3 && query.size(0) == keys.size(0),
           "{}: query must be [B, Tq, Dq] and keys [B, S, Dk], got {} and {}", name(), shape_str(query.sizes()),
           shape_str(keys.sizes()));
  Tensor s = scores(query, keys);
  if (mask.defined()) s = masked_fill(s, logical_not(mask.unsqueeze(1)), -std::numeric_limits<double>::infinity());
  Tensor w = softmax(s, -1);
  return {bmm(w, keys), w};
}

BahdanauAttention::BahdanauAttention(int64_t dq, int64_t dk, int64_t hidden, TensorOptions opt) {
  w_query = register_module("w_query", std::make_shared<Linear>(dq, hidden, false, opt));
  w_key = register_module("w_key", std::make_shared<Linear>(dk, hidden, false, opt));
  v = register_module("v", std::make_shared<Linear>(hidden, 1, false, opt));
}

Tensor BahdanauAttention::scores(const Tensor& query, const Tensor& keys) const {
  // [B, Tq, 1, H] + [B, 1, S, H] -> [B, Tq, S, H] -> v -> [B, Tq, S]
  Tensor e = tg::tanh(w_query->forward(query).unsqueeze(2) + w_key->forward(keys).unsqueeze(1));
  return v->forward(e).squeeze(-1);
}

LuongAttention::LuongAttention(int64_t dq, int64_t dk, bool general, TensorOptions opt) {
  TG_CHECK(general || dq == dk, "LuongAttention: the dot score needs equal query and key sizes, got {} and {}; use "
           "general = true", dq, dk);
  if (general) w = register_module("w", std::make_shared<Linear>(dk, dq, false, opt));
}

Tensor LuongAttention::scores(const Tensor& query, const Tensor& keys) const {
  Tensor k = w ? w->forward(keys) : keys;
  return bmm(query, k.transpose(1, 2));
}

// ---- beam search
std::vector<Hypothesis> beam_search(const BeamStepFn& step, int64_t start_token, int64_t eos, int64_t beam,
                                    int64_t max_len, double length_penalty) {
  TG_CHECK(beam >= 1 && max_len >= 1, "beam_search: beam and max_len must be >= 1, got {} and {}", beam, max_len);
  NoGradGuard no_grad;
  auto normalize = [&](Hypothesis& h) {
    const double len = static_cast<double>(std::max<size_t>(h.tokens.size(), 1));
    h.normalized = length_penalty == 0 ? h.score : h.score / std::pow(len, length_penalty);
  };
  auto by_rank = [](const Hypothesis& a, const Hypothesis& b) { return a.normalized > b.normalized; };
  std::vector<Hypothesis> live{Hypothesis{}}, finished;
  std::vector<int64_t> tokens{start_token}, parents{0};
  for (int64_t t = 0; t < max_len && !live.empty(); ++t) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    Tensor logp = step(tensor(tokens, {n}), tensor(parents, {n})).to(kFloat64).contiguous();
    const int64_t k = logp.size(0), V = logp.size(1);
    TG_CHECK(k == static_cast<int64_t>(live.size()), "beam_search: the step returned {} rows for {} hypotheses", k,
             live.size());
    const double* lp = logp.data<double>();
    struct Cand {
      double score;
      int64_t parent, token;
    };
    std::vector<Cand> cands;
    cands.reserve(k * V);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t v = 0; v < V; ++v) cands.push_back({live[i].score + lp[i * V + v], i, v});
    std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.score > b.score; });
    std::vector<Hypothesis> next;
    tokens.clear();
    parents.clear();
    for (const Cand& c : cands) {
      if (static_cast<int64_t>(next.size()) == beam) break;
      if (c.score == -std::numeric_limits<double>::infinity()) break;  // masked out: nothing below is possible
      Hypothesis h{live[c.parent].tokens, c.score, 0};
      h.tokens.push_back(c.token);
      normalize(h);
      if (c.token == eos) {
        finished.push_back(std::move(h));
      } else {
        next.push_back(std::move(h));
        tokens.push_back(c.token);
        parents.push_back(c.parent);
      }
    }
    live = std::move(next);
    if (static_cast<int64_t>(finished.size()) >= beam) {
      // Without a length penalty a prefix's score only falls as it grows, so once the best live prefix is below the
      // worst kept finished hypothesis nothing can change the result; with one, stop at `beam` finished.
      std::sort(finished.begin(), finished.end(), by_rank);
      finished.resize(beam);
      if (length_penalty != 0 || live.empty() || live.front().score <= finished.back().score) break;
    }
  }
  if (finished.empty()) finished = live;
  std::sort(finished.begin(), finished.end(), by_rank);
  if (static_cast<int64_t>(finished.size()) > beam) finished.resize(beam);
  return finished;
}

// ---- the encoder-decoder
Seq2Seq::Seq2Seq(Seq2SeqOptions o, TensorOptions opt) : options(std::move(o)) {
  const int64_t E = options.embed, H = options.hidden;
  TG_CHECK(options.src_vocab > 0 && options.tgt_vocab > 0, "Seq2Seq: vocabulary sizes must be positive");
  src_embed = register_module("src_embed", std::make_shared<Embedding>(options.src_vocab, E, std::nullopt, opt));
  tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(options.tgt_vocab, E, std::nullopt, opt));
  RNNOptions r{.input_size = E, .hidden_size = H, .num_layers = options.num_layers, .batch_first = true,
               .dropout = options.dropout};
  encoder = register_module("encoder", std::make_shared<LSTM>(r, opt));
  decoder = register_module("decoder", std::make_shared<LSTM>(r, opt));
  const std::string& a = options.attention;
  TG_CHECK(a == "none" || a == "additive" || a == "dot" || a == "general",
           "Seq2Seq: attention must be \"none\", \"additive\", \"dot\" or \"general\", got \"{}\"", a);
  if (a == "additive") attention = register_module("attention", std::make_shared<BahdanauAttention>(H, H, H, opt));
  if (a == "dot" || a == "general")
    attention = register_module("attention", std::make_shared<LuongAttention>(H, H, a == "general", opt));
  if (attention) combine = register_module("combine", std::make_shared<Linear>(2 * H, H, false, opt));
  out = register_module("out", std::make_shared<Linear>(H, options.tgt_vocab, true, opt));
}

Seq2Seq::Encoded Seq2Seq::encode(const Tensor& src_in, const Tensor& lengths) {
  TG_CHECK(src_in.defined() && src_in.dim() == 2 && src_in.dtype() == kInt64, "Seq2Seq: src must be int64 [B, S]");
  const int64_t B = src_in.size(0), S = src_in.size(1);
  Tensor src = src_in, mask;
  if (lengths.defined()) {
    NoGradGuard g;
    mask = lt(arange(static_cast<double>(S)).unsqueeze(0), lengths.unsqueeze(1));  // [B, S]
  }
  if (options.reverse_source) {  // position t of row b reads token L_b - 1 - t; padding stays at the end
    NoGradGuard g;
    Tensor pos = arange(static_cast<double>(S)).unsqueeze(0).expand({B, S});
    Tensor len = lengths.defined() ? lengths.unsqueeze(1) : full({B, 1}, static_cast<double>(S), kInt64);
    Tensor idx = where(lt(pos, len), sub(sub(len, 1.0), pos), pos);
    src = src.gather(1, idx);
  }
  auto [y, state] = encoder->forward(src_embed->forward(src), std::nullopt, lengths);
  return {y, std::get<0>(state), std::get<1>(state), mask};
}

Tensor Seq2Seq::readout(const Tensor& dec, const Encoded& enc) {
  if (!attention) return out->forward(dec);
  auto [ctx, w] = attention->forward(dec, enc.outputs, enc.mask);
  return out->forward(tg::tanh(combine->forward(cat({ctx, dec}, -1))));
}

Tensor Seq2Seq::forward(const Tensor& src, const Tensor& tgt_in, const Tensor& src_lengths) {
  TG_CHECK(tgt_in.defined() && tgt_in.dim() == 2 && tgt_in.dtype() == kInt64, "Seq2Seq: tgt_in must be int64 [B, T]");
  Encoded enc = encode(src, src_lengths);
  auto [dec, state] = decoder->forward(tgt_embed->forward(tgt_in), std::tuple{enc.h, enc.c});
  return readout(dec, enc);
}

Tensor Seq2Seq::greedy(const Tensor& src, int64_t max_len, const Tensor& src_lengths) {
  NoGradGuard g;
  Encoded enc = encode(src, src_lengths);
  const int64_t B = src.size(0);
  Tensor h = enc.h, c = enc.c, tok = full({B}, static_cast<double>(options.bos), kInt64);
  Tensor done = zeros({B}, kBool);
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < max_len; ++t) {
    auto [y, state] = decoder->forward(tgt_embed->forward(tok.unsqueeze(1)), std::tuple{h, c});
    h = std::get<0>(state);
    c = std::get<1>(state);
    Tensor next = argmax(readout(y, enc).squeeze(1), -1);
    next = where(done, full({}, static_cast<double>(options.eos), kInt64), next);
    outs.push_back(next);
    done = logical_or(done, eq(next, static_cast<double>(options.eos)));
    if (done.to(kInt64).sum().item<int64_t>() == B) break;
    tok = next;
  }
  return stack(outs, 1);
}

std::vector<Hypothesis> Seq2Seq::beam_search(const Tensor& src, int64_t beam, int64_t max_len,
                                             double length_penalty) {
  TG_CHECK(src.defined() && src.dim() == 1, "Seq2Seq::beam_search: src must be one sequence [S]");
  NoGradGuard g;
  Encoded enc = encode(src.unsqueeze(0));
  Tensor h = enc.h, c = enc.c;  // [L, k, H], one row per live hypothesis
  auto step = [&](const Tensor& tokens, const Tensor& parents) {
    const int64_t k = tokens.size(0);
    h = h.index_select(1, parents);
    c = c.index_select(1, parents);
    auto [y, state] = decoder->forward(tgt_embed->forward(tokens.unsqueeze(1)), std::tuple{h, c});
    h = std::get<0>(state);
    c = std::get<1>(state);
    Encoded ek{enc.outputs.expand({k, -1, -1}), Tensor(), Tensor(), Tensor()};
    return log_softmax(readout(y, ek).squeeze(1), -1);
  };
  return nn::beam_search(step, options.bos, options.eos, beam, max_len, length_penalty);
}

}  // namespace tg::nn
