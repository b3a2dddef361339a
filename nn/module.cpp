// The Module tree: registration, traversal with dotted names, state_dict loading with clear errors, summary.
#include "nn/module.h"

#include <cxxabi.h>

#include <set>
#include <typeinfo>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/ops.h"

namespace tg::nn {

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
std::string join_list(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "'" : ", '") + x + "'";
  return s;
}
}  // namespace

void Module::check_name(const std::string& name, const char* what) const {
  TG_CHECK(!name.empty(), "{}: {} name is empty", this->name(), what);
  TG_CHECK(name.find('.') == std::string::npos, "{}: {} name '{}' contains a '.'", this->name(), what, name);
  bool taken = false;
  for (const auto& [n, t] : params_) taken |= n == name;
  for (const auto& b : buffers_) taken |= b.name == name;
  for (const auto& [n, m] : children_) taken |= n == name;
  TG_CHECK(!taken, "{}: {} name '{}' is already registered", this->name(), what, name);
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_name(name, "parameter");
  if (!t.defined()) return t;
  TG_CHECK(!requires_grad || t.is_floating_point(), "{}: parameter '{}' must be floating to require grad, got {}",
           this->name(), name, dtype_name(t.dtype()));
  if (!t.is_leaf()) t = t.detach();
  t.requires_grad_(requires_grad);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::set_parameter(const std::string& name, const Tensor& t) {
  TG_CHECK(t.defined() && t.is_leaf(), "{}.set_parameter: '{}' must be a defined leaf tensor", this->name(), name);
  for (auto& [n, p] : params_)
    if (n == name) return p = t;
  TG_ERROR("{}.set_parameter: no parameter '{}' (use register_parameter for a new one)", this->name(), name);
}

Tensor Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_name(name, "buffer");
  if (!t.defined()) return t;
  if (!t.is_leaf()) t = t.detach();
  buffers_.push_back({name, t, persistent});
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_name(name, "submodule");
  TG_CHECK(m != nullptr, "{}: submodule '{}' is null", this->name(), name);
  TG_CHECK(m.get() != this, "{}: a module cannot be its own submodule ('{}')", this->name(), name);
  children_.emplace_back(name, std::move(m));
}

void Module::walk(const std::string& prefix,
                  const std::function<void(const std::string&, const Module&)>& fn) const {
  fn(prefix, *this);
  for (const auto& [n, m] : children_) m->walk(join(prefix, n), fn);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  auto own = [&](const std::string& prefix, const Module& m) {
    for (const auto& [n, t] : m.params_)
      if (seen.insert(t.impl()).second) out.emplace_back(join(prefix, n), t);
  };
  if (recurse) walk("", own);
  else own("", *this);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  auto own = [&](const std::string& prefix, const Module& m) {
    for (const auto& b : m.buffers_)
      if (seen.insert(b.t.impl()).second) out.emplace_back(join(prefix, b.name), b.t);
  };
  if (recurse) walk("", own);
  else own("", *this);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [n, m] : children_) out.push_back(m);
  return out;
}

NamedModules Module::named_children() const { return children_; }

NamedModules Module::named_modules(const std::string& prefix, bool include_self) const {
  NamedModules out;
  if (include_self) {
    // shared_from_this needs an owning shared_ptr; a stack-allocated root gets a non-owning (aliasing) pointer.
    std::shared_ptr<const Module> self = weak_from_this().lock();
    auto* raw = const_cast<Module*>(this);
    out.emplace_back(prefix, self ? std::const_pointer_cast<Module>(self) : std::shared_ptr<Module>(std::shared_ptr<Module>(), raw));
  }
  for (const auto& [n, m] : children_) {
    auto sub = m->named_modules(join(prefix, n), true);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules() const {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& [n, m] : named_modules()) out.push_back(m);
  return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [n, m] : children_) m->apply(fn);
  fn(*this);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

// Replaces the contents of each tensor's impl, so that every handle (the registry's and the layer's member) sees the
// converted tensor: the same trick as PyTorch's `param.data = param.data.to(...)`.
void Module::convert(const std::function<Tensor(const Tensor&)>& f, bool floating_only) {
  NoGradGuard guard;
  auto swap_in = [&](Tensor& t) {
    if (floating_only && !t.is_floating_point()) return;
    Tensor c = f(t);
    if (c.is_same(t)) return;
    Tensor g = t.grad();
    TensorImpl& dst = *t.impl();
    const TensorImpl& src = *c.impl();
    dst.storage = src.storage;
    dst.sizes = src.sizes;
    dst.strides = src.strides;
    dst.offset = src.offset;
    dst.dtype = src.dtype;
    dst.refresh_contiguous();
    dst.grad = g.defined() ? f(g) : Tensor();
  };
  // Visit each distinct tensor once (tied weights appear under several modules).
  std::set<const TensorImpl*> seen;
  apply([&](Module& m) {
    for (auto& [n, t] : m.params_)
      if (seen.insert(t.impl()).second) swap_in(t);
    for (auto& b : m.buffers_)
      if (seen.insert(b.t.impl()).second) swap_in(b.t);
  });
}

Module& Module::to(Device device) {
  convert([&](const Tensor& t) { return t.to(device); }, false);
  return *this;
}

Module& Module::to(DType dtype) {
  TG_CHECK(is_floating(dtype), "{}.to: modules convert to a floating dtype, got {}", name(), dtype_name(dtype));
  convert([&](const Tensor& t) { return t.to(dtype); }, true);
  return *this;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  walk("", [&](const std::string& prefix, const Module& m) {
    for (const auto& [n, t] : m.params_) out.emplace_back(join(prefix, n), t.detach());
    for (const auto& b : m.buffers_)
      if (b.persistent) out.emplace_back(join(prefix, b.name), b.t.detach());
  });
  return out;
}

LoadStateResult Module::load_state_dict(const std::map<std::string, Tensor>& dict, bool strict) {
  LoadStateResult r;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source), applied only once all checks passed
  std::set<std::string> used;
  std::vector<std::string> bad_shape;
  for (auto& [name, dst] : state_dict()) {
    auto it = dict.find(name);
    if (it == dict.end()) {
      r.missing.push_back(name);
      continue;
    }
    used.insert(name);
    const Tensor& src = it->second;
    TG_CHECK(src.defined(), "{}.load_state_dict: entry '{}' is an undefined tensor", this->name(), name);
    if (src.sizes() != dst.sizes()) {
      bad_shape.push_back(fmt::format("'{}': checkpoint has shape {}, the module has {}", name,
                                      shape_str(src.sizes()), shape_str(dst.sizes())));
      continue;
    }
    copies.emplace_back(dst, src);
  }
  for (const auto& [name, t] : dict)
    if (!used.count(name)) r.unexpected.push_back(name);

  std::string msg;
  for (const auto& s : bad_shape) msg += "\n  size mismatch for " + s;
  if (strict && !r.missing.empty()) msg += "\n  missing entries: " + join_list(r.missing);
  if (strict && !r.unexpected.empty()) msg += "\n  unexpected entries: " + join_list(r.unexpected);
  TG_CHECK(msg.empty(), "{}.load_state_dict: error(s) loading the state dict:{}", this->name(), msg);

  NoGradGuard guard;
  for (auto& [dst, src] : copies) dst.copy_(src);
  return r;
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& t : parameters())
    if (!trainable_only || t.requires_grad()) n += t.numel();
  return n;
}

std::string Module::summary() const {
  NamedTensors ps = named_parameters();
  size_t wn = 4, ws = 5;
  for (const auto& [n, t] : ps) {
    wn = std::max(wn, n.size());
    ws = std::max(ws, shape_str(t.sizes()).size());
  }
  std::string out = fmt::format("{}\n{:<{}}  {:<{}}  {:>12}\n", name(), "name", wn, "shape", ws, "count");
  std::string rule(wn + ws + 16, '-');
  out += rule + "\n";
  int64_t total = 0, trainable = 0;
  for (const auto& [n, t] : ps) {
    out += fmt::format("{:<{}}  {:<{}}  {:>12}{}\n", n, wn, shape_str(t.sizes()), ws, t.numel(),
                       t.requires_grad() ? "" : "  (frozen)");
    total += t.numel();
    if (t.requires_grad()) trainable += t.numel();
  }
  out += rule + "\n";
  out += fmt::format("total: {} parameters ({} trainable) in {} tensors\n", total, trainable, ps.size());
  return out;
}

std::string Module::name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : mangled;
  std::free(d);
  // The class name alone, as PyTorch prints it: "tg::nn::Linear" reads "Linear" (template arguments are kept).
  size_t end = s.find('<');
  size_t cut = s.rfind("::", end == std::string::npos ? std::string::npos : end);
  return cut == std::string::npos ? s : s.substr(cut + 2);
}

// ---- containers

const std::shared_ptr<Module>& ModuleList::operator[](size_t i) const {
  TG_CHECK(i < items_.size(), "ModuleList: index {} out of range for size {}", i, items_.size());
  return items_[i];
}

void ModuleList::check_cast(size_t i, bool ok) const {
  TG_CHECK(ok, "ModuleList::at: module {} is a {}, not the requested type", i, items_[i]->name());
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  TG_CHECK(i < items_.size(), "Sequential: index {} out of range for size {}", i, items_.size());
  return items_[i];
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& m : items_) h = m->forward(h);
  return h;
}

}  // namespace tg::nn
