// Recording nodes on the thread-local tape, saved-tensor version checks, and tape inspection.
#include "autograd/node.h"

#include <atomic>
#include <sstream>
#include <unordered_set>

#include "core/ops.h"

namespace tg {

namespace {
thread_local bool grad_enabled = true;
}
bool GradMode::is_enabled() { return grad_enabled; }
void GradMode::set_enabled(bool on) { grad_enabled = on; }

namespace autograd {

namespace {

std::atomic<uint64_t> next_seq{1};

// The tape holds weak references in recording order: nodes are owned by the tensors they produced, so a graph
// that goes out of scope frees itself; expired entries are compacted away as the tape grows.
struct Tape {
  std::vector<std::weak_ptr<Node>> nodes;
  size_t compact_at = 1024;
  void push(const std::shared_ptr<Node>& n) {
    if (nodes.size() >= compact_at) {
      std::erase_if(nodes, [](const std::weak_ptr<Node>& w) { return w.expired(); });
      compact_at = std::max<size_t>(1024, 2 * nodes.size());
    }
    nodes.push_back(n);
  }
};
thread_local Tape tape;

// Shares data and geometry, drops autograd links.
Tensor alias_without_history(const Tensor& t) {
  auto impl = std::make_shared<TensorImpl>(*t.impl());
  impl->requires_grad = false;
  impl->grad = Tensor();
  impl->grad_fn.reset();
  return Tensor(std::move(impl));
}

}  // namespace

Tensor Node::saved_tensor(size_t i) const {
  TG_CHECK(!released, "{}: trying to backward through the graph a second time (its saved tensors were freed); "
           "pass retain_graph=true to the first backward", name);
  TG_CHECK(i < saved.size(), "{}: saved tensor {} does not exist", name, i);
  const SavedTensor& s = saved[i];
  TG_CHECK(s.data.version() == s.version,
           "{}: a tensor saved for backward (shape {}) was modified by an in-place operation (version {} -> {})",
           name, shape_str(s.data.sizes()), s.version, s.data.version());
  return s.data;
}

void Node::release() {
  saved.clear();
  saved.shrink_to_fit();
  backward = nullptr;
  released = true;
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, const Tensor& out, const std::vector<Tensor>& inputs, std::vector<Tensor> saved,
            BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->seq = next_seq.fetch_add(1, std::memory_order_relaxed);
  node->next.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.requires_grad()) continue;
    if (t.grad_fn()) node->next[i].fn = t.grad_fn();
    else node->next[i].leaf = t.impl_ptr();
  }
  node->saved.reserve(saved.size());
  for (Tensor& s : saved) {
    uint64_t v = s.version();
    // An alias for anything with history, and for out itself, which is about to get this node as grad_fn.
    bool alias = s.requires_grad() || s.is_same(out);
    node->saved.push_back({alias ? alias_without_history(s) : std::move(s), v});
  }
  node->backward = std::move(backward);
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = node;
  tape.push(node);
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.sizes() == shape) return grad;
  const Shape& g = grad.sizes();
  size_t lead = g.size() - shape.size();
  Shape dims;
  for (size_t i = 0; i < g.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g[i] != 1)) dims.push_back(static_cast<int64_t>(i));
  Tensor r = dims.empty() ? grad : grad.sum(dims, /*keepdim=*/true);
  return r.reshape(shape);
}

size_t tape_size() {
  size_t n = 0;
  for (auto& w : tape.nodes) n += !w.expired();
  return n;
}

std::string tape_string() {
  std::ostringstream os;
  for (auto& w : tape.nodes) {
    auto n = w.lock();
    if (!n) continue;
    os << "#" << n->seq << " " << n->name << "(";
    for (size_t i = 0; i < n->next.size(); ++i) {
      if (i) os << ", ";
      const Edge& e = n->next[i];
      if (e.fn) os << "#" << e.fn->seq;
      else if (e.leaf) os << "leaf" << shape_str(e.leaf->sizes);
      else os << "-";
    }
    os << ")" << (n->released ? " [freed]" : "") << "\n";
  }
  return os.str();
}

std::string to_dot(const Tensor& root) {
  std::ostringstream os;
  os << "digraph tape {\n  rankdir=BT;\n";
  std::vector<Node*> stack;
  std::unordered_set<const void*> seen;
  if (root.grad_fn()) stack.push_back(root.grad_fn().get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    os << "  n" << n->seq << " [label=\"" << n->name << " #" << n->seq << "\"];\n";
    for (const Edge& e : n->next) {
      if (e.fn) {
        os << "  n" << e.fn->seq << " -> n" << n->seq << ";\n";
        stack.push_back(e.fn.get());
      } else if (e.leaf) {
        const void* key = e.leaf.get();
        if (seen.insert(key).second)
          os << "  l" << key << " [shape=box,label=\"leaf " << shape_str(e.leaf->sizes) << "\"];\n";
        os << "  l" << key << " -> n" << n->seq << ";\n";
      }
    }
  }
  os << "}\n";
  return os.str();
}

}  // namespace autograd
}  // namespace tg
