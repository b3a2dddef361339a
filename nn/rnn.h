// Recurrent networks as in PyTorch: the cells (RNNCell, LSTMCell, GRUCell) and the multi-layer RNN, LSTM and GRU
// (batch_first, initial state, final state, inter-layer dropout, bidirectional, variable lengths), with PyTorch's
// parameter names, shapes, gate order and initialisation, so state dicts load both ways.
//
//   tg::nn::LSTM lstm({.input_size = 64, .hidden_size = 256, .num_layers = 2, .batch_first = true});
//   auto [y, state] = lstm.forward(x);          // y [B, T, 256]; state = (h_n, c_n), each [2, B, 256]
//   auto [y2, state2] = lstm.forward(x2, std::tuple{std::get<0>(state).detach(), std::get<1>(state).detach()});
//
// Each layer and direction is ONE recorded op (nn/rnn_fused.cpp) over the backend's fused kernels: no per-step or
// per-gate tensors on the tape. `fused = false` runs the readable reference instead, a loop of cells composed from
// tg ops (rnn_cell below), which the tests check the fused op against. docs/recurrent.md explains both.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "nn/module.h"

namespace tg::nn {

using tg::RnnCell;  // Tanh, Relu, LSTM, GRU

namespace functional {

// The result of one layer in one direction: outputs y [T, B, H] (time-major; zero at padded positions) and the
// final state h [B, H] (c [B, H] for LSTM, else undefined).
struct RnnLayerOut {
  Tensor y, h, c;
};

// One recurrent layer over a time-major sequence x [T, B, I] from h0 [B, H] (and c0 [B, H] for LSTM), with
// w_ih [G*H, I], w_hh [G*H, H] and optional biases b_ih, b_hh [G*H] in PyTorch's layout (G = 1, 4, 3 gates for
// Tanh/Relu, LSTM, GRU). reverse runs from the last step to the first. lengths (int64 [B], each in [0, T]) marks
// row b valid for t < lengths[b]: at padded positions the state is carried unchanged and the output is zero, so the
// final state is that of the last valid step (of the first, for reverse), as with PyTorch's packed sequences, and
// padded inputs change neither outputs nor gradients.
// fused: one recorded op over Backend::rnn_forward/rnn_backward; otherwise a loop of rnn_cell steps.
RnnLayerOut rnn_layer(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                      const Tensor& w_hh, const Tensor& b_ih = {}, const Tensor& b_hh = {}, bool reverse = false,
                      const Tensor& lengths = {}, bool fused = true);

// One step of a cell composed from tg ops (the reference the fused kernels are tested against). x [B, I], h [B, H],
// c [B, H] (LSTM). Returns (h', c'), c' undefined except for LSTM.
//   Elman: h' = tanh(W_ih x + b_ih + W_hh h + b_hh)            (or relu)
//   LSTM:  i, f, g, o = sigma, sigma, tanh, sigma of chunks of W_ih x + b_ih + W_hh h + b_hh
//          c' = f c + i g;  h' = o tanh(c')
//   GRU:   r = sigma(W_ir x + b_ir + W_hr h + b_hr);  z = sigma(W_iz x + b_iz + W_hz h + b_hz)
//          n = tanh(W_in x + b_in + r (W_hn h + b_hn));  h' = (1 - z) n + z h
std::pair<Tensor, Tensor> rnn_cell(RnnCell cell, const Tensor& x, const Tensor& h, const Tensor& c,
                                   const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih = {},
                                   const Tensor& b_hh = {});

// Fused: the op behind rnn_layer(fused = true) (nn/rnn_fused.cpp).
RnnLayerOut rnn_layer_fused(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                            const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, bool reverse,
                            const Tensor& lengths);

}  // namespace functional

// ---- cells: one step, x [B, I] (or unbatched [I]); the state defaults to zeros.
// Parameters weight_ih [G*H, I], weight_hh [G*H, H], bias_ih, bias_hh [G*H], all ~ U(-1/sqrt(H), 1/sqrt(H)).
class RNNCellBase : public Module {
 public:
  void reset_parameters();
  RnnCell cell;
  int64_t input_size, hidden_size;
  bool fused = true;  // false: the composed reference
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;

 protected:
  RNNCellBase(RnnCell cell, int64_t input_size, int64_t hidden_size, bool bias, TensorOptions opt);
  std::pair<Tensor, Tensor> step(const Tensor& x, const Tensor& h, const Tensor& c);
};

// nonlinearity "tanh" or "relu".
class RNNCell : public RNNCellBase {
 public:
  RNNCell(int64_t input_size, int64_t hidden_size, bool bias = true, const std::string& nonlinearity = "tanh",
          TensorOptions opt = {});
  Tensor forward(const Tensor& x, const Tensor& h = {});
};

class LSTMCell : public RNNCellBase {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true, TensorOptions opt = {});
  // Returns (h', c').
  std::tuple<Tensor, Tensor> forward(const Tensor& x, const std::optional<std::tuple<Tensor, Tensor>>& hc = {});
};

class GRUCell : public RNNCellBase {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true, TensorOptions opt = {});
  Tensor forward(const Tensor& x, const Tensor& h = {});
};

// ---- multi-layer networks
struct RNNOptions {
  int64_t input_size = 0, hidden_size = 0, num_layers = 1;
  bool bias = true;
  bool batch_first = false;   // x and y are [B, T, *] instead of [T, B, *] (the state is [L*D, B, H] either way)
  double dropout = 0.0;       // on the outputs of every layer but the last, in training mode
  bool bidirectional = false; // D = 2: outputs [*, 2H] (forward then reverse), states ordered layer-major
  std::string nonlinearity = "tanh";  // RNN only: "tanh" or "relu"
  bool fused = true;          // false: the composed reference (a loop of cells on the tape)
};

// Parameters per layer l and direction (suffix "" or "_reverse"), registered in PyTorch's order:
// weight_ih_l{l}[_reverse] [G*H, in_l], weight_hh_l{l} [G*H, H], bias_ih_l{l}, bias_hh_l{l} [G*H], where in_0 =
// input_size and in_l = D*H after, all ~ U(-1/sqrt(H), 1/sqrt(H)).
class RNNBase : public Module {
 public:
  void reset_parameters();
  // Any cell: x [T, B, I] ([B, T, I] when batch_first, or unbatched [T, I]), h0/c0 [L*D, B, H] ([L*D, H]
  // unbatched) or undefined for zeros, lengths int64 [B] optional (see functional::rnn_layer). Returns
  // (y, h_n, c_n), c_n undefined except for LSTM.
  std::tuple<Tensor, Tensor, Tensor> run(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& lengths);

  RnnCell cell;
  RNNOptions options;
  // Index l * D + d, d = 1 for the reverse direction; biases undefined without bias.
  std::vector<Tensor> w_ih, w_hh, b_ih, b_hh;

 protected:
  RNNBase(RnnCell cell, RNNOptions options, TensorOptions opt);
};

// Elman RNN. forward returns (y, h_n).
class RNN : public RNNBase {
 public:
  explicit RNN(RNNOptions options, TensorOptions opt = {});
  RNN(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, TensorOptions opt = {});
  std::tuple<Tensor, Tensor> forward(const Tensor& x, const Tensor& h0 = {}, const Tensor& lengths = {});
};

// forward returns (y, (h_n, c_n)), as libtorch.
class LSTM : public RNNBase {
 public:
  explicit LSTM(RNNOptions options, TensorOptions opt = {});
  LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, TensorOptions opt = {});
  std::tuple<Tensor, std::tuple<Tensor, Tensor>> forward(
      const Tensor& x, const std::optional<std::tuple<Tensor, Tensor>>& hc = {}, const Tensor& lengths = {});
};

// forward returns (y, h_n).
class GRU : public RNNBase {
 public:
  explicit GRU(RNNOptions options, TensorOptions opt = {});
  GRU(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, TensorOptions opt = {});
  std::tuple<Tensor, Tensor> forward(const Tensor& x, const Tensor& h0 = {}, const Tensor& lengths = {});
};

}  // namespace tg::nn
