// The fused recurrent layer: one recorded op per layer and direction over Backend::rnn_forward / rnn_backward.
// The op's single output packs the whole result, [T+2, B, H] = [h0 | y_0 .. y_{T-1} | c_n] (mirrored for reverse,
// see backends/backend.h), so that the one node sees the gradients of the outputs and of the final state together,
// as backpropagation through time needs; y, h_n and c_n are views of it. What backward keeps is the packed output
// (every h_t), the activated gates of every step and, for LSTM, the cell states (for GRU, W_hn h + b_hn).
#include "autograd/functions/common.h"
#include "nn/detail.h"
#include "nn/rnn.h"

namespace tg::nn::functional {

using autograd::Node;
using namespace tg::nn::detail;

namespace {

const char* op_name(RnnCell c) {
  switch (c) {
    case RnnCell::Tanh: return "rnn_tanh";
    case RnnCell::Relu: return "rnn_relu";
    case RnnCell::LSTM: return "lstm";
    case RnnCell::GRU: return "gru";
  }
  return "rnn";
}

}  // namespace

RnnLayerOut rnn_layer_fused(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                            const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, bool reverse,
                            const Tensor& lengths) {
  const char* op = op_name(cell);
  check_floating(op, "input", x);
  TG_CHECK(x.dim() == 3, "{}: input must be [T, B, I], got {}", op, shape_str(x.sizes()));
  TG_CHECK(w_hh.defined() && w_hh.dim() == 2, "{}: weight_hh must be 2-d [G*H, H]", op);
  TG_CHECK(w_ih.defined(), "{}: weight_ih is undefined", op);
  const int64_t G = rnn_gate_count(cell), H = w_hh.size(1), T = x.size(0), B = x.size(1), I = x.size(2);
  const bool lstm = cell == RnnCell::LSTM;
  check_param(op, "weight_ih", w_ih, x, {G * H, I});
  check_param(op, "weight_hh", w_hh, x, {G * H, H});
  check_param(op, "bias_ih", b_ih, x, {G * H});
  check_param(op, "bias_hh", b_hh, x, {G * H});
  TG_CHECK(h0.defined(), "{}: the initial state h0 is undefined", op);
  check_param(op, "h0", h0, x, {B, H});
  TG_CHECK(!lstm || c0.defined(), "lstm: the initial cell state c0 is undefined");
  if (lstm) check_param(op, "c0", c0, x, {B, H});
  if (lengths.defined()) {
    TG_CHECK(lengths.dtype() == kInt64 && lengths.sizes() == Shape{B}, "{}: lengths must be int64 [{}], got {} {}",
             op, B, dtype_name(lengths.dtype()), shape_str(lengths.sizes()));
    for (int64_t v : lengths.to_vector<int64_t>())
      TG_CHECK(v >= 0 && v <= T, "{}: lengths must lie in [0, {}], got {}", op, T, v);
  }
  if (T == 0) return {empty({0, B, H}, x.options()), h0, lstm ? c0 : Tensor()};

  RnnTensors rt;
  rt.cell = cell;
  rt.reverse = reverse;
  if (lengths.defined()) {  // padded inputs read as zero, so that not even NaN there reaches dW_ih = dG^T x
    NoGradGuard ng;
    Tensor valid = lt(arange(static_cast<double>(T)).reshape({T, 1, 1}), lengths.reshape({1, B, 1}));
    rt.x = where(valid, x, 0.0);
  } else {
    rt.x = dense(x);
  }
  rt.h0 = dense(h0);
  rt.c0 = lstm ? dense(c0) : Tensor();
  rt.w_ih = dense(w_ih);
  rt.w_hh = dense(w_hh);
  rt.b_ih = dense(b_ih);
  rt.b_hh = dense(b_hh);
  rt.lengths = dense(lengths);
  rt.out = empty({T + 2, B, H}, x.options());
  rt.gates = empty({T, B, G * H}, x.options());
  if (lstm || cell == RnnCell::GRU) rt.aux = empty({T, B, H}, x.options());
  backend_for(x).rnn_forward(rt);
  Tensor packed = rt.out;

  const std::vector<Tensor> inputs{x, h0, lstm ? c0 : Tensor(), w_ih, w_hh, b_ih, b_hh};
  if (autograd::needs_grad(inputs)) {
    std::vector<bool> wants;
    for (const Tensor& t : inputs) wants.push_back(t.defined() && t.requires_grad());
    // Saved in this order; the optional ones only when defined (an undefined tensor cannot be saved).
    std::vector<Tensor> saved{rt.x, rt.w_ih, rt.w_hh, packed, rt.gates};
    for (const Tensor& t : {rt.c0, rt.aux, rt.lengths})
      if (t.defined()) saved.push_back(t);
    const bool has_aux = rt.aux.defined(), has_len = rt.lengths.defined();
    autograd::record(op, packed, inputs, std::move(saved),
                     [=, xs = x.sizes(), ws = w_ih.sizes(), hs = w_hh.sizes()](const Tensor& g, const Node& n) {
                       RnnTensors t;
                       t.cell = cell;
                       t.reverse = reverse;
                       t.x = n.saved_tensor(0);
                       t.w_ih = n.saved_tensor(1);
                       t.w_hh = n.saved_tensor(2);
                       t.out = n.saved_tensor(3);
                       t.gates = n.saved_tensor(4);
                       size_t i = 5;
                       if (lstm) t.c0 = n.saved_tensor(i++);
                       if (has_aux) t.aux = n.saved_tensor(i++);
                       if (has_len) t.lengths = n.saved_tensor(i++);
                       const TensorOptions o = t.x.options();
                       const Shape bias{G * H}, state{B, H};
                       RnnGrads gr;
                       gr.out = g.contiguous();
                       if (wants[0]) gr.x = empty(xs, o);
                       if (wants[1]) gr.h0 = empty(state, o);
                       if (wants[2]) gr.c0 = empty(state, o);
                       if (wants[3]) gr.w_ih = empty(ws, o);
                       if (wants[4]) gr.w_hh = empty(hs, o);
                       if (wants[5]) gr.b_ih = empty(bias, o);
                       if (wants[6]) gr.b_hh = empty(bias, o);
                       backend_for(t.x).rnn_backward(t, gr);
                       return std::vector<Tensor>{gr.x, gr.h0, gr.c0, gr.w_ih, gr.w_hh, gr.b_ih, gr.b_hh};
                     });
  }
  RnnLayerOut r;
  r.y = packed.narrow(0, 1, T);
  r.h = packed.select(0, reverse ? 1 : T);
  if (lstm) r.c = packed.select(0, reverse ? 0 : T + 1);
  if (lengths.defined()) {  // padded outputs read as zero (the packed output holds the carried state there)
    Tensor mask;
    {
      NoGradGuard ng;
      mask = lt(arange(static_cast<double>(T)).reshape({T, 1, 1}), lengths.reshape({1, B, 1})).to(x.dtype());
    }
    r.y = r.y * mask;
  }
  return r;
}

}  // namespace tg::nn::functional
