// minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"; layout of lucidrains/minGRU-pytorch): gated
// recurrences whose gates read only x_t, never h_{t-1}, so that h_t = a_t h_{t-1} + b_t is linear in h and a whole
// sequence is one parallel scan. Training runs the scan in log space (Heinsen 2023), generation steps one token at a
// time; the two modes give the same outputs (tests/test_rnn_min.cpp).
//
//   minGRU:  z = sigma(k), h~ = g(W_h x)              h_t = (1 - z) h_{t-1} + z h~
//   minLSTM: f = sigma(W_f x), i = sigma(W_i x), h~ = g(W_h x), f' = f / (f + i), i' = i / (f + i)
//                                                     h_t = f' h_{t-1} + i' h~
//   g(x) = x + 0.5 for x >= 0, sigma(x) below: positive, so log h exists; a carried h0 must be positive too.
//
//   tg::nn::MinGRU rnn(64);                      // dim 64, no expansion
//   auto [y, h] = rnn.forward(x);                // x, y [B, T, 64]; h [B, 64], the state after the last step
//   auto h2 = rnn.step(x_t, h);                  // generation: one step, x_t [B, 64]
#pragma once
#include <cstdint>
#include <memory>
#include <tuple>

#include "nn/layers.h"
#include "nn/module.h"

namespace tg::nn {

namespace functional {

// log(cumsum(exp(x))) along dim, as torch.logcumsumexp: one fused op, stable for any range of x (running maximum),
// whose backward is a reverse scan with every exponent <= 0.
Tensor logcumsumexp(const Tensor& x, int64_t dim);

// minGRU's activation g and its logarithm (log g(x) = log(x + 0.5) for x >= 0, -softplus(-x) below).
Tensor min_rnn_g(const Tensor& x);
Tensor min_rnn_log_g(const Tensor& x);

// Heinsen's scan of h_t = a_t h_{t-1} + b_t along dim 1 of [B, T, D] in log space: with a* = cumsum_t log a_t,
// log h_t = a*_t + logcumsumexp_t(log b_t - a*_t). Returns log h, [B, T, D]. (h_0 = 0; to carry a state, prepend
// log h0 to log_b with a zero log-coefficient, which MinGRU and MinLSTM do.)
Tensor heinsen_scan(const Tensor& log_a, const Tensor& log_b);

}  // namespace functional

// Shared by MinGRU and MinLSTM: the input projection (no bias) to `gates` blocks of dim_inner, the optional output
// projection, and the parallel and sequential loops over a sequence.
class MinRNNBase : public Module {
 public:
  // x [B, T, dim]; h0 [B, dim_inner] (positive) or undefined for zeros. Returns (y [B, T, dim or dim_inner], h_T).
  // Parallel: the log-space scan over the whole sequence.
  std::tuple<Tensor, Tensor> forward(const Tensor& x, const Tensor& h0 = {});
  // The same result one step at a time (the generation path), a loop of step().
  std::tuple<Tensor, Tensor> forward_sequential(const Tensor& x, const Tensor& h0 = {});
  // One step: x_t [B, dim], h [B, dim_inner] (undefined: zeros). Returns h_t (before the output projection; apply
  // project() for y_t).
  Tensor step(const Tensor& x_t, const Tensor& h = {});
  Tensor project(const Tensor& h) const { return to_out ? to_out->forward(h) : h; }

  int64_t dim, dim_inner;
  std::shared_ptr<Linear> to_hidden_and_gates;  // [gates * dim_inner, dim]: hidden first, then the gate pre-activations
  std::shared_ptr<Linear> to_out;               // [dim, dim_inner], or null

 protected:
  MinRNNBase(int64_t dim, double expansion, int gates, bool proj_out, TensorOptions opt);
  // log a_t and log b_t of the linear recurrence, from the projected chunks (hidden, gates...).
  virtual std::tuple<Tensor, Tensor> log_coefficients(const std::vector<Tensor>& chunks) const = 0;
  // a_t and b_t in linear space, for the sequential step.
  virtual std::tuple<Tensor, Tensor> coefficients(const std::vector<Tensor>& chunks) const = 0;

 private:
  int gates_;
};

// proj_out defaults to expansion != 1, as in minGRU-pytorch.
class MinGRU : public MinRNNBase {
 public:
  explicit MinGRU(int64_t dim, double expansion = 1.0, std::optional<bool> proj_out = std::nullopt,
                  TensorOptions opt = {});
  std::string name() const override { return "MinGRU"; }

 protected:
  std::tuple<Tensor, Tensor> log_coefficients(const std::vector<Tensor>& chunks) const override;
  std::tuple<Tensor, Tensor> coefficients(const std::vector<Tensor>& chunks) const override;
};

class MinLSTM : public MinRNNBase {
 public:
  explicit MinLSTM(int64_t dim, double expansion = 1.0, std::optional<bool> proj_out = std::nullopt,
                   TensorOptions opt = {});
  std::string name() const override { return "MinLSTM"; }

 protected:
  std::tuple<Tensor, Tensor> log_coefficients(const std::vector<Tensor>& chunks) const override;
  std::tuple<Tensor, Tensor> coefficients(const std::vector<Tensor>& chunks) const override;
};

}  // namespace tg::nn
