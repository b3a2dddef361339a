// The recurrent layers: the composed reference cell (rnn_cell), the layer loop that either calls the fused op or
// steps the reference cell on the tape, and the cell and multi-layer modules with PyTorch's names and init.
#include "nn/rnn.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "nn/functional.h"
#include "nn/init.h"

namespace tg::nn {

namespace functional {

std::pair<Tensor, Tensor> rnn_cell(RnnCell cell, const Tensor& x, const Tensor& h, const Tensor& c,
                                   const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  Tensor gi = linear(x, w_ih, b_ih), gh = linear(h, w_hh, b_hh);
  switch (cell) {
    case RnnCell::Tanh: return {tg::tanh(gi + gh), Tensor()};
    case RnnCell::Relu: return {relu(gi + gh), Tensor()};
    case RnnCell::LSTM: {
      auto g = (gi + gh).chunk(4, 1);
      Tensor i = sigmoid(g[0]), f = sigmoid(g[1]), gg = tg::tanh(g[2]), o = sigmoid(g[3]);
      Tensor c2 = f * c + i * gg;
      return {o * tg::tanh(c2), c2};
    }
    case RnnCell::GRU: {
      auto xi = gi.chunk(3, 1), hi = gh.chunk(3, 1);
      Tensor r = sigmoid(xi[0] + hi[0]), z = sigmoid(xi[1] + hi[1]);
      Tensor n = tg::tanh(xi[2] + r * hi[2]);
      return {(1.0 - z) * n + z * h, Tensor()};
    }
  }
  TG_ERROR("rnn_cell: unknown cell");
}

RnnLayerOut rnn_layer(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                      const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, bool reverse,
                      const Tensor& lengths, bool fused) {
  if (fused) return rnn_layer_fused(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, lengths);
  // The reference: one cell per step on the tape; padded rows keep their state (where) and output zeros.
  TG_CHECK(x.defined() && x.dim() == 3, "rnn_layer: input must be [T, B, I]");
  const int64_t T = x.size(0), B = x.size(1);
  Tensor valid;  // bool [T, B, 1]
  if (lengths.defined()) {
    NoGradGuard g;
    valid = lt(arange(static_cast<double>(T)).reshape({T, 1, 1}), lengths.reshape({1, B, 1}));
  }
  Tensor h = h0, c = c0;
  std::vector<Tensor> ys(T);
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    Tensor x_t = valid.defined() ? where(valid.select(0, t), x.select(0, t), 0.0) : x.select(0, t);
    auto [h2, c2] = rnn_cell(cell, x_t, h, c, w_ih, w_hh, b_ih, b_hh);
    if (valid.defined()) {
      Tensor m = valid.select(0, t);
      h = where(m, h2, h);
      if (c2.defined()) c = where(m, c2, c);
      ys[t] = where(m, h2, 0.0);
    } else {
      h = h2;
      c = c2;
      ys[t] = h2;
    }
  }
  Tensor y = T ? stack(ys, 0) : empty({0, B, w_hh.size(1)}, x.options());
  return {y, h, cell == RnnCell::LSTM ? c : Tensor()};
}

}  // namespace functional

namespace F = functional;

namespace {

TensorOptions param_options(TensorOptions opt) { return opt.requires_grad(false); }

void uniform_hidden(const Tensor& t, int64_t hidden) {
  const double k = hidden > 0 ? 1.0 / std::sqrt(static_cast<double>(hidden)) : 0.0;
  if (t.defined()) init::uniform_(t, -k, k);
}

RnnCell elman_cell(const std::string& nonlinearity) {
  TG_CHECK(nonlinearity == "tanh" || nonlinearity == "relu",
           "RNN: nonlinearity must be \"tanh\" or \"relu\", got \"{}\"", nonlinearity);
  return nonlinearity == "tanh" ? RnnCell::Tanh : RnnCell::Relu;
}

}  // namespace

// ---- cells
RNNCellBase::RNNCellBase(RnnCell c, int64_t in, int64_t hidden, bool bias, TensorOptions opt)
    : cell(c), input_size(in), hidden_size(hidden) {
  TG_CHECK(in >= 0 && hidden > 0, "{}: input_size must be >= 0 and hidden_size > 0, got {} and {}", name(), in, hidden);
  const int64_t GH = rnn_gate_count(c) * hidden;
  weight_ih = register_parameter("weight_ih", empty({GH, in}, param_options(opt)));
  weight_hh = register_parameter("weight_hh", empty({GH, hidden}, param_options(opt)));
  if (bias) {
    bias_ih = register_parameter("bias_ih", empty({GH}, param_options(opt)));
    bias_hh = register_parameter("bias_hh", empty({GH}, param_options(opt)));
  }
  reset_parameters();
}

void RNNCellBase::reset_parameters() {
  for (const Tensor& t : {weight_ih, weight_hh, bias_ih, bias_hh}) uniform_hidden(t, hidden_size);
}

std::pair<Tensor, Tensor> RNNCellBase::step(const Tensor& x_in, const Tensor& h_in, const Tensor& c_in) {
  TG_CHECK(x_in.defined() && (x_in.dim() == 1 || x_in.dim() == 2), "{}: input must be [B, {}] or [{}], got {}",
           name(), input_size, input_size, x_in.defined() ? shape_str(x_in.sizes()) : "undefined");
  const bool batched = x_in.dim() == 2;
  Tensor x = batched ? x_in : x_in.unsqueeze(0);
  const Shape state{x.size(0), hidden_size};
  auto prep = [&](const Tensor& s) {
    if (!s.defined()) return zeros(state, x.options().requires_grad(false));
    return batched ? s : s.unsqueeze(0);
  };
  Tensor h = prep(h_in), c = cell == RnnCell::LSTM ? prep(c_in) : Tensor();
  std::pair<Tensor, Tensor> r;
  if (fused) {
    F::RnnLayerOut o = F::rnn_layer_fused(cell, x.unsqueeze(0), h, c, weight_ih, weight_hh, bias_ih, bias_hh,
                                          false, {});
    r = {o.h, o.c};
  } else {
    r = F::rnn_cell(cell, x, h, c, weight_ih, weight_hh, bias_ih, bias_hh);
  }
  if (!batched) r = {r.first.squeeze(0), r.second.defined() ? r.second.squeeze(0) : Tensor()};
  return r;
}

RNNCell::RNNCell(int64_t in, int64_t hidden, bool bias, const std::string& nonlinearity, TensorOptions opt)
    : RNNCellBase(elman_cell(nonlinearity), in, hidden, bias, opt) {}
Tensor RNNCell::forward(const Tensor& x, const Tensor& h) { return step(x, h, {}).first; }

LSTMCell::LSTMCell(int64_t in, int64_t hidden, bool bias, TensorOptions opt)
    : RNNCellBase(RnnCell::LSTM, in, hidden, bias, opt) {}
std::tuple<Tensor, Tensor> LSTMCell::forward(const Tensor& x, const std::optional<std::tuple<Tensor, Tensor>>& hc) {
  auto [h, c] = hc ? step(x, std::get<0>(*hc), std::get<1>(*hc)) : step(x, {}, {});
  return {h, c};
}

GRUCell::GRUCell(int64_t in, int64_t hidden, bool bias, TensorOptions opt)
    : RNNCellBase(RnnCell::GRU, in, hidden, bias, opt) {}
Tensor GRUCell::forward(const Tensor& x, const Tensor& h) { return step(x, h, {}).first; }

// ---- multi-layer
RNNBase::RNNBase(RnnCell c, RNNOptions o, TensorOptions opt) : cell(c), options(std::move(o)) {
  const int64_t H = options.hidden_size, L = options.num_layers, D = options.bidirectional ? 2 : 1;
  TG_CHECK(options.input_size >= 0 && H > 0 && L >= 1,
           "{}: input_size must be >= 0, hidden_size > 0 and num_layers >= 1, got {}, {}, {}", name(),
           options.input_size, H, L);
  TG_CHECK(options.dropout >= 0 && options.dropout <= 1, "{}: dropout must be in [0, 1], got {}", name(),
           options.dropout);
  const int64_t GH = rnn_gate_count(c) * H;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const std::string sfx = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      const int64_t in = l == 0 ? options.input_size : D * H;
      w_ih.push_back(register_parameter("weight_ih" + sfx, empty({GH, in}, param_options(opt))));
      w_hh.push_back(register_parameter("weight_hh" + sfx, empty({GH, H}, param_options(opt))));
      if (options.bias) {
        b_ih.push_back(register_parameter("bias_ih" + sfx, empty({GH}, param_options(opt))));
        b_hh.push_back(register_parameter("bias_hh" + sfx, empty({GH}, param_options(opt))));
      } else {
        b_ih.emplace_back();
        b_hh.emplace_back();
      }
    }
  reset_parameters();
}

void RNNBase::reset_parameters() {
  for (auto& [n, p] : named_parameters(false)) uniform_hidden(p, options.hidden_size);  // all: U(-1/sqrt(H), 1/sqrt(H))
}

std::tuple<Tensor, Tensor, Tensor> RNNBase::run(const Tensor& x_in, const Tensor& h0_in, const Tensor& c0_in,
                                                const Tensor& lengths) {
  TG_CHECK(x_in.defined() && (x_in.dim() == 2 || x_in.dim() == 3), "{}: input must be 3-d (or 2-d unbatched), got {}",
           name(), x_in.defined() ? shape_str(x_in.sizes()) : "undefined");
  const int64_t H = options.hidden_size, L = options.num_layers, D = options.bidirectional ? 2 : 1;
  const bool batched = x_in.dim() == 3;
  // Time-major [T, B, I]; batch_first and unbatched inputs are views of it.
  Tensor seq = !batched ? x_in.unsqueeze(1) : options.batch_first ? x_in.transpose(0, 1) : x_in;
  TG_CHECK(seq.size(2) == options.input_size, "{}: input has {} features, expected {}", name(), seq.size(2),
           options.input_size);
  const int64_t B = seq.size(1);
  const bool lstm = cell == RnnCell::LSTM;
  auto state = [&](const Tensor& s, const char* what) {
    if (!s.defined()) return zeros({L * D, B, H}, seq.options().requires_grad(false));
    Tensor t = batched ? s : s.unsqueeze(1);
    TG_CHECK(t.sizes() == (Shape{L * D, B, H}), "{}: {} must be [{}, {}, {}], got {}", name(), what, L * D, B, H,
             shape_str(s.sizes()));
    return t;
  };
  Tensor h0 = state(h0_in, "h0"), c0 = lstm ? state(c0_in, "c0") : Tensor();
  std::vector<Tensor> hs, cs;
  for (int64_t l = 0; l < L; ++l) {
    std::vector<Tensor> ys;
    for (int64_t d = 0; d < D; ++d) {
      const size_t k = static_cast<size_t>(l * D + d);
      F::RnnLayerOut o = F::rnn_layer(cell, seq, h0.select(0, k), lstm ? c0.select(0, k) : Tensor(), w_ih[k],
                                      w_hh[k], b_ih[k], b_hh[k], d == 1, lengths, options.fused);
      ys.push_back(o.y);
      hs.push_back(o.h);
      if (lstm) cs.push_back(o.c);
    }
    seq = D == 1 ? ys[0] : cat(ys, 2);
    if (l + 1 < L && options.dropout > 0 && is_training()) seq = F::dropout(seq, options.dropout, true);
  }
  Tensor y = !batched ? seq.squeeze(1) : options.batch_first ? seq.transpose(0, 1) : seq;
  Tensor h_n = stack(hs, 0), c_n = lstm ? stack(cs, 0) : Tensor();
  if (!batched) {
    h_n = h_n.squeeze(1);
    if (lstm) c_n = c_n.squeeze(1);
  }
  return {y, h_n, c_n};
}

RNN::RNN(RNNOptions o, TensorOptions opt) : RNNBase(elman_cell(o.nonlinearity), o, opt) {}
RNN::RNN(int64_t in, int64_t hidden, int64_t layers, TensorOptions opt)
    : RNN(RNNOptions{.input_size = in, .hidden_size = hidden, .num_layers = layers}, opt) {}
std::tuple<Tensor, Tensor> RNN::forward(const Tensor& x, const Tensor& h0, const Tensor& lengths) {
  auto [y, h, c] = run(x, h0, {}, lengths);
  return {y, h};
}

LSTM::LSTM(RNNOptions o, TensorOptions opt) : RNNBase(RnnCell::LSTM, std::move(o), opt) {}
LSTM::LSTM(int64_t in, int64_t hidden, int64_t layers, TensorOptions opt)
    : LSTM(RNNOptions{.input_size = in, .hidden_size = hidden, .num_layers = layers}, opt) {}
std::tuple<Tensor, std::tuple<Tensor, Tensor>> LSTM::forward(const Tensor& x,
                                                             const std::optional<std::tuple<Tensor, Tensor>>& hc,
                                                             const Tensor& lengths) {
  auto [y, h, c] = hc ? run(x, std::get<0>(*hc), std::get<1>(*hc), lengths) : run(x, {}, {}, lengths);
  return {y, {h, c}};
}

GRU::GRU(RNNOptions o, TensorOptions opt) : RNNBase(RnnCell::GRU, std::move(o), opt) {}
GRU::GRU(int64_t in, int64_t hidden, int64_t layers, TensorOptions opt)
    : GRU(RNNOptions{.input_size = in, .hidden_size = hidden, .num_layers = layers}, opt) {}
std::tuple<Tensor, Tensor> GRU::forward(const Tensor& x, const Tensor& h0, const Tensor& lengths) {
  auto [y, h, c] = run(x, h0, {}, lengths);
  return {y, h};
}

}  // namespace tg::nn
