// tg::nn::Module: the base of every layer. It owns named parameters, buffers and submodules, and gives the
// libtorch-style tree operations over them (parameters, state_dict, train/eval, to, zero_grad, summary).
//
//   struct MLP : tg::nn::Module {
//     std::shared_ptr<tg::nn::Linear> fc1, fc2;
//     MLP() {
//       fc1 = register_module("fc1", std::make_shared<tg::nn::Linear>(784, 512));
//       fc2 = register_module("fc2", std::make_shared<tg::nn::Linear>(512, 10));
//     }
//     tg::Tensor forward(const tg::Tensor& x) { return fc2->forward(tg::relu(fc1->forward(x))); }
//   };
//
// Names are dotted paths from the root, as in PyTorch: "fc1.weight", "blocks.0.attn.qkv.weight".
// Submodules are held by std::shared_ptr, so a module can be shared (tied) between parents.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace tg::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module;
using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

// What load_state_dict(strict = false) skipped: state entries the dict lacked, and dict entries with no home.
struct LoadStateResult {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  Module() = default;
  virtual ~Module() = default;
  // A module's tensors are registered by handle; copying would silently alias them, so modules are not copyable.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration (call from the subclass constructor). Names must be non-empty, unique and dot-free.
  // A parameter is a leaf: a tensor with a grad_fn is detached first. Returns the registered handle, which the
  // subclass keeps as a member (weight_ = register_parameter("weight", ...)). An undefined tensor (an absent
  // bias) is accepted and not registered, as PyTorch's register_parameter(name, None).
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  // Buffers are state that is not trained (running statistics, masks). Non-persistent ones stay out of state_dict.
  Tensor register_buffer(const std::string& name, Tensor t, bool persistent = true);
  // Replaces this module's parameter `name` (it must exist), e.g. to tie weights as GPT-2 ties its head to the
  // embedding; assign the result to the layer's member too:
  //   head->weight = head->set_parameter("weight", emb->weight);
  // The tensor is registered as is (shared, not copied); parameters() then lists it once.
  Tensor set_parameter(const std::string& name, const Tensor& t);
  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // ---- traversal. recurse = false gives this module's own entries only.
  // Parameters shared by several submodules (tied weights) are listed once, under their first name.
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  // Direct submodules, in registration order.
  std::vector<std::shared_ptr<Module>> children() const;
  NamedModules named_children() const;
  // Every module of the tree in pre-order, this one first under the name `prefix` (empty by default).
  // For a root that is not owned by a shared_ptr, its entry is a non-owning pointer.
  NamedModules named_modules(const std::string& prefix = "", bool include_self = true) const;
  std::vector<std::shared_ptr<Module>> modules() const;
  // Calls fn on every module of the tree, children first (as torch.nn.Module.apply).
  void apply(const std::function<void(Module&)>& fn);

  // ---- mode. Layers such as Dropout read is_training().
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops every parameter's .grad() (PyTorch's set_to_none = True).
  void zero_grad();

  // Moves / casts every parameter and buffer in place: the handles the layers keep see the new tensor, so the
  // module stays usable. to(dtype) converts floating tensors only (integer buffers keep their dtype); grads are
  // converted along. Build optimizers after calling these, since they hold the tensors' state by handle.
  Module& to(Device device);
  Module& to(DType dtype);

  // ---- state. Parameters then persistent buffers of each module, parents before children. The tensors share
  // storage with the module (detached views), as in PyTorch.
  NamedTensors state_dict() const;
  // Copies values into the existing tensors (no grad, dtype converted). A shape mismatch is always an error;
  // with strict, so is any missing or unexpected entry. Every error names the entries (and both shapes).
  LoadStateResult load_state_dict(const std::map<std::string, Tensor>& dict, bool strict = true);

  // ---- reporting
  int64_t num_parameters(bool trainable_only = false) const;
  // A table: name, shape, count per parameter, then the total.
  std::string summary() const;
  // The class name (demangled), used by summary() and errors; override for a nicer one.
  virtual std::string name() const;

 protected:
  void add_child(const std::string& name, std::shared_ptr<Module> m);

 private:
  struct Buffer {
    std::string name;
    Tensor t;
    bool persistent;
  };
  void check_name(const std::string& name, const char* what) const;
  // Calls fn(prefixed name, module) over the tree in pre-order.
  void walk(const std::string& prefix, const std::function<void(const std::string&, const Module&)>& fn) const;
  void convert(const std::function<Tensor(const Tensor&)>& f, bool floating_only);

  NamedTensors params_;
  std::vector<Buffer> buffers_;
  NamedModules children_;
  bool training_ = true;
};

// A module with one tensor in and one out: what Sequential chains. Layers with such a forward derive from it.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// An indexable list of submodules, named "0", "1", ... (as torch.nn.ModuleList). It has no forward of its own.
class ModuleList : public Module {
 public:
  ModuleList() = default;
  explicit ModuleList(std::vector<std::shared_ptr<Module>> ms) {
    for (auto& m : ms) push_back(std::move(m));
  }
  template <class M> std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    add_child(std::to_string(items_.size()), m);
    items_.push_back(m);
    return m;
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;
  // The i-th module as its concrete type; a tg::Error if it is not an M.
  template <class M> std::shared_ptr<M> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[i]);
    check_cast(i, p != nullptr);
    return p;
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  std::string name() const override { return "ModuleList"; }

 private:
  void check_cast(size_t i, bool ok) const;
  std::vector<std::shared_ptr<Module>> items_;
};

// Chains unary modules: forward(x) = m_n(...m_1(x)). Children are named "0", "1", ...
//   auto mlp = std::make_shared<Sequential>(std::make_shared<Linear>(4, 8), std::make_shared<ReLU>(),
//                                           std::make_shared<Linear>(8, 2));
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  template <class... Ms> explicit Sequential(std::shared_ptr<Ms>... ms) { (push_back(std::move(ms)), ...); }
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> ms) {
    for (auto& m : ms) push_back(std::move(m));
  }
  template <class M> std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    static_assert(std::is_base_of_v<UnaryModule, M>, "Sequential holds UnaryModules (Tensor forward(const Tensor&))");
    add_child(std::to_string(items_.size()), m);
    items_.push_back(m);
    return m;
  }
  Tensor forward(const Tensor& x) override;
  size_t size() const { return items_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  std::string name() const override { return "Sequential"; }

 private:
  std::vector<std::shared_ptr<UnaryModule>> items_;
};

}  // namespace tg::nn
