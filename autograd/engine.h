// Reverse-mode execution of the tape: Tensor::backward and tg::autograd::grad.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace tg::autograd {

// Accumulates d(sum_i <roots[i], grads[i]>)/d(leaf) into every reachable leaf's .grad().
// An undefined grads[i] means ones, allowed only for a single-element root.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads = {}, bool retain_graph = false);

// The gradients of outputs with respect to inputs (leaves or not), without touching any .grad().
// allow_unused: an input that outputs do not depend on gets an undefined tensor instead of an error.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool allow_unused = false);

}  // namespace tg::autograd
