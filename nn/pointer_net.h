// Pointer networks (Vinyals, Fortunato & Jaitly 2015): an LSTM encoder over the input elements, an LSTM decoder
// whose input at step i is the element chosen at step i-1 (a learned "go" vector at step 0), and additive attention
// used as the output itself: u_ij = v^T tanh(W1 e_j + W2 d_i), p(C_i = j | C_<i, P) = softmax_j(u_ij). The model
// points at input positions, so one network serves any input length (sorting, convex hull, TSP).
// At inference the positions already chosen are masked out, so greedy and beam decoding return permutations.
//
//   tg::nn::PointerNet net({.input_dim = 1, .hidden = 64});
//   Tensor u = net.forward(x, order);                 // x [B, n, 1], order [B, n] int64: logits [B, n, n]
//   Tensor loss = cross_entropy(u.reshape({-1, n}), order.reshape({-1}));
//   Tensor pred = net.greedy(x);                      // [B, n], a permutation per row
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/module.h"
#include "nn/rnn.h"
#include "nn/seq2seq.h"

namespace tg::nn {

struct PointerNetOptions {
  int64_t input_dim = 1, hidden = 64, num_layers = 1;
  int64_t attention_hidden = 0;  // size of W1 e + W2 d; 0 takes hidden
  // Also mask already-chosen targets in forward (training). The paper masks at inference only; with it on,
  // forward's logits are exactly what greedy and beam decoding score.
  bool mask_chosen = false;
};

class PointerNet : public Module {
 public:
  explicit PointerNet(PointerNetOptions options, TensorOptions opt = {});
  // inputs [B, n, input_dim], targets [B, m] int64 positions in [0, n) (teacher forcing). Returns pointer logits
  // [B, m, n].
  Tensor forward(const Tensor& inputs, const Tensor& targets);
  // Greedy decoding with chosen positions masked: [B, steps] positions (steps <= n; -1 for n, a permutation).
  Tensor greedy(const Tensor& inputs, int64_t steps = -1);
  // Beam search for one input set [n, input_dim] over `steps` pointers (-1: n), chosen positions masked.
  std::vector<Hypothesis> beam_search(const Tensor& inputs, int64_t beam, int64_t steps = -1);

  PointerNetOptions options;
  std::shared_ptr<LSTM> encoder, decoder;
  std::shared_ptr<BahdanauAttention> pointer;
  Tensor go;  // [input_dim], the decoder's first input

 private:
  // Decoder inputs [k, input_dim] for positions (n means "go") of the inputs [n, D] shared by every row.
  Tensor decoder_inputs(const Tensor& inputs, const Tensor& positions) const;
};

}  // namespace tg::nn
