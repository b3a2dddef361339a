// Pointer network: teacher-forced logits over input positions, and greedy / beam decoding that masks the positions
// already chosen.
#include "nn/pointer_net.h"

#include <limits>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "nn/init.h"

namespace tg::nn {

namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
}

PointerNet::PointerNet(PointerNetOptions o, TensorOptions opt) : options(o) {
  const int64_t D = o.input_dim, H = o.hidden;
  TG_CHECK(D > 0 && H > 0, "PointerNet: input_dim and hidden must be positive, got {} and {}", D, H);
  RNNOptions r{.input_size = D, .hidden_size = H, .num_layers = o.num_layers, .batch_first = true};
  encoder = register_module("encoder", std::make_shared<LSTM>(r, opt));
  decoder = register_module("decoder", std::make_shared<LSTM>(r, opt));
  pointer = register_module(
      "pointer", std::make_shared<BahdanauAttention>(H, H, o.attention_hidden > 0 ? o.attention_hidden : H, opt));
  go = register_parameter("go", empty({D}, opt.requires_grad(false)));
  const double k = 1.0 / std::sqrt(static_cast<double>(H));
  init::uniform_(go, -k, k);
}

Tensor PointerNet::forward(const Tensor& inputs, const Tensor& targets) {
  TG_CHECK(inputs.defined() && inputs.dim() == 3 && inputs.size(2) == options.input_dim,
           "PointerNet: inputs must be [B, n, {}]", options.input_dim);
  TG_CHECK(targets.defined() && targets.dim() == 2 && targets.dtype() == kInt64 && targets.size(0) == inputs.size(0),
           "PointerNet: targets must be int64 [B, m]");
  const int64_t B = inputs.size(0), n = inputs.size(1), m = targets.size(1), D = options.input_dim;
  auto [enc, state] = encoder->forward(inputs);
  // Decoder inputs: go, then the elements the targets point at (all but the last).
  Tensor first = go.reshape({1, 1, D}).expand({B, 1, D});
  Tensor dec_in = first;
  if (m > 1) {
    Tensor idx = targets.narrow(1, 0, m - 1).unsqueeze(2).expand({B, m - 1, D});
    dec_in = cat({first, inputs.gather(1, idx)}, 1);
  }
  auto [dec, st] = decoder->forward(dec_in, state);
  Tensor u = pointer->scores(dec, enc);  // [B, m, n]
  if (options.mask_chosen && m > 1) {
    Tensor chosen;  // [B, m, n]: position j was a target before step i
    {
      NoGradGuard g;
      Tensor oh = one_hot(targets, n);
      chosen = gt(cumsum(oh, 1) - oh, 0.0);
    }
    u = masked_fill(u, chosen, kNegInf);
  }
  return u;
}

Tensor PointerNet::greedy(const Tensor& inputs, int64_t steps) {
  NoGradGuard g;
  const int64_t B = inputs.size(0), n = inputs.size(1), D = options.input_dim;
  if (steps < 0) steps = n;
  TG_CHECK(steps <= n, "PointerNet::greedy: {} steps over {} positions", steps, n);
  auto [enc, state] = encoder->forward(inputs);
  Tensor h = std::get<0>(state), c = std::get<1>(state);
  Tensor x = go.reshape({1, 1, D}).expand({B, 1, D}), chosen = zeros({B, n}, kBool);
  std::vector<Tensor> picks;
  for (int64_t t = 0; t < steps; ++t) {
    auto [d, st] = decoder->forward(x, std::tuple{h, c});
    h = std::get<0>(st);
    c = std::get<1>(st);
    Tensor u = masked_fill(pointer->scores(d, enc).squeeze(1), chosen, kNegInf);
    Tensor j = argmax(u, 1);  // [B]
    picks.push_back(j);
    chosen = logical_or(chosen, gt(one_hot(j, n), 0.0));
    x = inputs.gather(1, j.reshape({B, 1, 1}).expand({B, 1, D}));
  }
  return stack(picks, 1);
}

Tensor PointerNet::decoder_inputs(const Tensor& inputs, const Tensor& positions) const {
  return cat({inputs, go.unsqueeze(0)}, 0).index_select(0, positions);
}

std::vector<Hypothesis> PointerNet::beam_search(const Tensor& inputs, int64_t beam, int64_t steps) {
  TG_CHECK(inputs.defined() && inputs.dim() == 2 && inputs.size(1) == options.input_dim,
           "PointerNet::beam_search: inputs must be one set [n, {}]", options.input_dim);
  NoGradGuard g;
  const int64_t n = inputs.size(0);
  if (steps < 0) steps = n;
  TG_CHECK(steps <= n, "PointerNet::beam_search: {} steps over {} positions", steps, n);
  auto [enc, state] = encoder->forward(inputs.unsqueeze(0));
  Tensor h = std::get<0>(state), c = std::get<1>(state), chosen = zeros({1, n}, kBool);
  // Tokens are positions; n stands for "go" (the first step). There is no end token: every hypothesis runs `steps`.
  auto step = [&](const Tensor& tokens, const Tensor& parents) {
    const int64_t k = tokens.size(0);
    h = h.index_select(1, parents);
    c = c.index_select(1, parents);
    chosen = chosen.index_select(0, parents);
    Tensor real = lt(tokens, static_cast<double>(n));  // false for the "go" rows, which mark nothing
    Tensor mark = logical_and(gt(one_hot(where(real, tokens, 0.0), n), 0.0), real.unsqueeze(1));
    chosen = logical_or(chosen, mark);
    auto [d, st] = decoder->forward(decoder_inputs(inputs, tokens).unsqueeze(1), std::tuple{h, c});
    h = std::get<0>(st);
    c = std::get<1>(st);
    Tensor u = masked_fill(pointer->scores(d, enc.expand({k, -1, -1})).squeeze(1), chosen, kNegInf);
    return log_softmax(u, -1);
  };
  return nn::beam_search(step, n, /*eos=*/-1, beam, steps);
}

}  // namespace tg::nn
