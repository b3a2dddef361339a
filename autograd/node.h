// A tape node: what one recorded op needs to send a gradient back to its inputs.
// Every node has exactly one output (multi-output ops such as split record one node per output), which keeps
// the engine simple: a node's incoming gradient is the gradient of the tensor whose grad_fn it is.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/tensor.h"

namespace tg::autograd {

struct Node;

// Where the gradient for one input goes: the node that produced it, or the leaf tensor to accumulate into.
// Both null: that input does not require grad.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
};

// A tensor kept for backward. It holds the data without the autograd links (so saving an op's own output makes no
// reference cycle) and the storage version at save time, so that a later in-place write is detected.
struct SavedTensor {
  Tensor data;
  uint64_t version = 0;
};

// grad is the gradient of the node's output; returns one gradient per input, undefined where there is none.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad, const Node& node)>;

struct Node {
  std::string name;
  uint64_t seq = 0;  // position on the tape: backward runs nodes in decreasing seq
  std::vector<Edge> next;
  std::vector<SavedTensor> saved;
  BackwardFn backward;
  bool released = false;  // saved tensors freed by a backward without retain_graph

  // Engine bookkeeping during one backward call.
  Tensor grad_accum;
  uint64_t visit_mark = 0;

  // The i-th saved tensor; a tg::Error if it was modified in place since it was saved or already freed.
  Tensor saved_tensor(size_t i) const;
  void release();
};

// True when grad mode is on and some input requires grad.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Appends a node for `out`, produced by op `name` from `inputs`, to the tape and marks out as requiring grad.
// Call only when needs_grad(inputs). `saved` are kept for backward and read back with node.saved_tensor(i).
void record(const char* name, const Tensor& out, const std::vector<Tensor>& inputs, std::vector<Tensor> saved,
            BackwardFn backward);

// Sums a gradient over the dims broadcasting added, so that it has `shape` again.
Tensor sum_to(const Tensor& grad, const Shape& shape);

// ---- the thread-local tape, for inspection and teaching
size_t tape_size();                       // live nodes recorded on this thread
std::string tape_string();                // one line per live node, in recording order
std::string to_dot(const Tensor& root);   // the graph that produced root, as Graphviz dot

}  // namespace tg::autograd
