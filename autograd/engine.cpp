// The backward pass: find the nodes reachable from the roots, replay them in reverse tape order, sum every
// contribution to a tensor before passing it on, and accumulate into leaves (or capture, for autograd::grad).
#include "autograd/engine.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>

#include "autograd/node.h"
#include "core/ops.h"

namespace tg::autograd {

namespace {

std::atomic<uint64_t> next_mark{1};

void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) slot = g;
  else slot = slot + g;
}

// The gradient for a leaf, checked against its shape and converted to its dtype (both engine modes use it).
Tensor leaf_gradient(const TensorImpl* leaf, const Tensor& g, const char* from) {
  TG_CHECK(g.sizes() == leaf->sizes, "backward: {} produced a gradient of shape {} for a leaf of shape {}", from,
           shape_str(g.sizes()), shape_str(leaf->sizes));
  return g.dtype() == leaf->dtype ? g : g.to(leaf->dtype);
}

// Stores g into a leaf's .grad(): steals g when nothing else references it, else copies, then adds in place.
void accumulate_leaf(TensorImpl* leaf, const Tensor& g, const char* from) {
  Tensor gg = leaf_gradient(leaf, g, from);
  if (!leaf->grad.defined()) {
    bool exclusive = gg.impl_ptr().use_count() <= 2 && gg.storage().use_count() == 1 && gg.is_contiguous();
    leaf->grad = exclusive ? gg.detach() : gg.clone();
  } else {
    leaf->grad.add_(gg);
  }
}

struct Run {
  std::vector<Node*> order;
  // For autograd::grad: leaf impl or node -> index of the input it captures.
  std::unordered_map<const void*, size_t> capture;
  std::vector<Tensor> captured;
};

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
                  Run* run_capture) {
  TG_CHECK(!roots.empty(), "backward: no tensors given");
  TG_CHECK(grads.empty() || grads.size() == roots.size(), "backward: {} outputs but {} gradients", roots.size(),
           grads.size());
  NoGradGuard no_grad;
  Run local;
  Run& run = run_capture ? *run_capture : local;
  uint64_t mark = next_mark.fetch_add(1);

  // Seed the roots.
  std::vector<Node*> stack;
  // A backward that throws part-way (a modified saved tensor, a missing formula) must not leave gradients parked
  // on nodes, where the next backward through them would add them in.
  struct ClearOnExit {
    std::vector<Node*>& a;
    std::vector<Node*>& b;
    ~ClearOnExit() {
      for (Node* n : a) n->grad_accum = Tensor();
      for (Node* n : b) n->grad_accum = Tensor();
    }
  } clear_on_exit{stack, run.order};
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    TG_CHECK(r.defined(), "backward: output {} is an undefined tensor", i);
    TG_CHECK(r.requires_grad(), "backward: output {} (shape {}) does not require grad and has no grad_fn", i,
             shape_str(r.sizes()));
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      TG_CHECK(r.numel() == 1, "backward: grad can be implicitly created only for single-element outputs, got shape {}",
               shape_str(r.sizes()));
      g = ones_like(r);
    }
    TG_CHECK(g.sizes() == r.sizes(), "backward: gradient of shape {} given for an output of shape {}",
             shape_str(g.sizes()), shape_str(r.sizes()));
    if (Node* n = r.grad_fn().get()) {
      accumulate(n->grad_accum, g);
      if (n->visit_mark != mark) {
        n->visit_mark = mark;
        stack.push_back(n);
      }
    } else if (run_capture) {
      auto it = run.capture.find(r.impl());
      if (it != run.capture.end()) accumulate(run.captured[it->second], g);
    } else {
      accumulate_leaf(r.impl(), g, "backward");
    }
  }

  // Everything reachable, then reverse recording order: a node runs only after all its consumers have.
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    run.order.push_back(n);
    for (Edge& e : n->next)
      if (e.fn && e.fn->visit_mark != mark) {
        e.fn->visit_mark = mark;
        stack.push_back(e.fn.get());
      }
  }
  std::sort(run.order.begin(), run.order.end(), [](Node* a, Node* b) { return a->seq > b->seq; });

  for (Node* n : run.order) {
    Tensor g = std::move(n->grad_accum);
    n->grad_accum = Tensor();
    if (!g.defined()) continue;
    if (run_capture) {
      auto it = run.capture.find(n);
      if (it != run.capture.end()) accumulate(run.captured[it->second], g);
    }
    TG_CHECK(!n->released, "{}: trying to backward through the graph a second time (its saved tensors were "
             "freed); pass retain_graph=true to the first backward", n->name);
    TG_CHECK(n->backward != nullptr, "{}: this op has no backward formula", n->name);
    std::vector<Tensor> gin = n->backward(g, *n);
    TG_CHECK(gin.size() == n->next.size(), "{}: backward returned {} gradients for {} inputs", n->name, gin.size(),
             n->next.size());
    for (size_t i = 0; i < gin.size(); ++i) {
      Edge& e = n->next[i];
      if (!gin[i].defined()) continue;
      if (e.fn) {
        accumulate(e.fn->grad_accum, gin[i]);
      } else if (e.leaf) {
        if (run_capture) {
          auto it = run.capture.find(e.leaf.get());
          if (it != run.capture.end())
            accumulate(run.captured[it->second], leaf_gradient(e.leaf.get(), gin[i], n->name.c_str()));
        } else {
          accumulate_leaf(e.leaf.get(), gin[i], n->name.c_str());
        }
      }
    }
    if (!retain_graph) n->release();
  }
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  run_backward(roots, grads, retain_graph, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool allow_unused) {
  Run run;
  run.captured.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    TG_CHECK(t.defined() && t.requires_grad(), "autograd::grad: input {} does not require grad", i);
    const void* key = t.grad_fn() ? static_cast<const void*>(t.grad_fn().get()) : t.impl();
    run.capture.emplace(key, i);
  }
  run_backward(outputs, grad_outputs, retain_graph, &run);
  for (size_t i = 0; i < inputs.size(); ++i)
    TG_CHECK(allow_unused || run.captured[i].defined(),
             "autograd::grad: input {} (shape {}) was not used to compute the outputs; pass allow_unused=true", i,
             shape_str(inputs[i].sizes()));
  return run.captured;
}

}  // namespace tg::autograd

namespace tg {
void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph);
}
}  // namespace tg
