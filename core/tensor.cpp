// Tensor handle: metadata, element access, autograd accessors, printing, and the method/operator aliases.
#include "core/tensor.h"

#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/ops.h"

namespace tg {

namespace {
TensorImpl& checked(const std::shared_ptr<TensorImpl>& p, const char* what) {
  TG_CHECK(p != nullptr, "{}: called on an undefined tensor", what);
  return *p;
}
}  // namespace

#define IMPL(what) checked(impl_, what)

void TensorImpl::refresh_contiguous() {
  numel = shape_numel(sizes);
  int64_t expected = 1;
  contiguous = true;
  if (numel == 0) return;  // no elements: any strides are dense (as in PyTorch, and as empty() makes them)
  for (size_t i = sizes.size(); i-- > 0;) {
    if (sizes[i] == 1) continue;
    if (strides[i] != expected) {
      contiguous = false;
      break;
    }
    expected *= sizes[i];
  }
}

Tensor make_tensor(std::shared_ptr<Storage> storage, Shape sizes, Shape strides, int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  impl->refresh_contiguous();
  return Tensor(std::move(impl));
}

Tensor empty(const Shape& sizes, TensorOptions opt) {
  for (int64_t d : sizes) TG_CHECK(d >= 0, "empty: negative dimension in shape {}", shape_str(sizes));
  int64_t n = shape_numel(sizes);
  auto st = Storage::allocate(static_cast<size_t>(n) * element_size(opt.dtype_), opt.device_);
  Tensor t = make_tensor(std::move(st), sizes, contiguous_strides(sizes), 0, opt.dtype_);
  if (opt.requires_grad_) t.requires_grad_(true);
  return t;
}

const Shape& Tensor::sizes() const { return IMPL("sizes").sizes; }
const Shape& Tensor::strides() const { return IMPL("strides").strides; }
int64_t Tensor::dim() const { return static_cast<int64_t>(IMPL("dim").sizes.size()); }
int64_t Tensor::size(int64_t d) const { return sizes()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::numel() const { return IMPL("numel").numel; }
int64_t Tensor::storage_offset() const { return IMPL("storage_offset").offset; }
DType Tensor::dtype() const { return IMPL("dtype").dtype; }
Device Tensor::device() const { return IMPL("device").storage->device; }
bool Tensor::is_contiguous() const { return IMPL("is_contiguous").contiguous; }
TensorOptions Tensor::options() const { return TensorOptions(dtype()).device(device()); }
const std::shared_ptr<Storage>& Tensor::storage() const { return IMPL("storage").storage; }
uint64_t Tensor::version() const { return IMPL("version").storage->version; }

void* Tensor::data_ptr() const {
  auto& i = IMPL("data_ptr");
  TG_CHECK(i.storage->device.is_cpu(), "data_ptr: tensor is on {}; call .to(tg::Device::cpu()) first",
           i.storage->device.str());
  return static_cast<char*>(i.storage->data) + i.offset * static_cast<int64_t>(element_size(i.dtype));
}

template <class T> T Tensor::item() const {
  TG_CHECK(numel() == 1, "item: a tensor with {} elements (shape {}) cannot be converted to a scalar", numel(),
           shape_str(sizes()));
  Tensor c = device().is_cpu() ? *this : to(Device::cpu());
  return dispatch(c.dtype(), [&]<class S>() { return static_cast<T>(*static_cast<const S*>(c.data_ptr())); });
}

template <class T> std::vector<T> Tensor::to_vector() const {
  Tensor c = tg::contiguous(device().is_cpu() ? *this : to(Device::cpu()));
  std::vector<T> out(static_cast<size_t>(c.numel()));
  dispatch(c.dtype(), [&]<class S>() {
    const S* p = static_cast<const S*>(c.data_ptr());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
  });
  return out;
}

#define TG_INSTANTIATE_ACCESS(T)                 \
  template T Tensor::item<T>() const;            \
  template std::vector<T> Tensor::to_vector<T>() const;
TG_INSTANTIATE_ACCESS(bool)
TG_INSTANTIATE_ACCESS(int)
TG_INSTANTIATE_ACCESS(long)
TG_INSTANTIATE_ACCESS(long long)
TG_INSTANTIATE_ACCESS(float)
TG_INSTANTIATE_ACCESS(double)
#undef TG_INSTANTIATE_ACCESS

// ---- autograd accessors
Tensor& Tensor::requires_grad_(bool r) {
  auto& i = IMPL("requires_grad_");
  TG_CHECK(!r || is_floating(i.dtype), "requires_grad_: only floating tensors can require grad, got {}",
           dtype_name(i.dtype));
  TG_CHECK(r || !i.grad_fn, "requires_grad_(false): only leaves can stop requiring grad; use detach()");
  i.requires_grad = r;
  return *this;
}
bool Tensor::requires_grad() const { return IMPL("requires_grad").requires_grad; }
bool Tensor::is_leaf() const { return IMPL("is_leaf").grad_fn == nullptr; }
Tensor Tensor::grad() const { return IMPL("grad").grad; }
void Tensor::set_grad(const Tensor& g) const {
  auto& i = IMPL("set_grad");
  TG_CHECK(!g.defined() || g.sizes() == i.sizes, "set_grad: gradient of shape {} for a tensor of shape {}",
           shape_str(g.sizes()), shape_str(i.sizes));
  i.grad = g;
}
void Tensor::zero_grad() const { IMPL("zero_grad").grad = Tensor(); }
const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return IMPL("grad_fn").grad_fn; }
Tensor Tensor::detach() const {
  auto& i = IMPL("detach");
  return make_tensor(i.storage, i.sizes, i.strides, i.offset, i.dtype);
}

// ---- method aliases of the free functions
Tensor Tensor::to(DType t) const { return tg::to(*this, t); }
Tensor Tensor::to(Device d) const { return tg::to(*this, d); }
Tensor Tensor::contiguous() const { return tg::contiguous(*this); }
Tensor Tensor::clone() const { return tg::clone(*this); }
Tensor Tensor::view(const Shape& s) const { return tg::view(*this, s); }
Tensor Tensor::reshape(const Shape& s) const { return tg::reshape(*this, s); }
Tensor Tensor::flatten(int64_t a, int64_t b) const { return tg::flatten(*this, a, b); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return tg::transpose(*this, a, b); }
Tensor Tensor::t() const {
  TG_CHECK(dim() <= 2, "t: expects a tensor with <= 2 dims, got shape {}", shape_str(sizes()));
  return dim() < 2 ? *this : tg::transpose(*this, 0, 1);
}
Tensor Tensor::permute(const Shape& d) const { return tg::permute(*this, d); }
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const { return tg::narrow(*this, d, s, l); }
Tensor Tensor::slice(int64_t d, int64_t s, int64_t e, int64_t st) const { return tg::slice(*this, d, s, e, st); }
Tensor Tensor::select(int64_t d, int64_t i) const { return tg::select(*this, d, i); }
Tensor Tensor::squeeze() const { return tg::squeeze(*this); }
Tensor Tensor::squeeze(int64_t d) const { return tg::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int64_t d) const { return tg::unsqueeze(*this, d); }
Tensor Tensor::expand(const Shape& s) const { return tg::expand(*this, s); }
Tensor Tensor::expand_as(const Tensor& o) const { return tg::expand(*this, o.sizes()); }
std::vector<Tensor> Tensor::split(int64_t s, int64_t d) const { return tg::split(*this, s, d); }
std::vector<Tensor> Tensor::chunk(int64_t c, int64_t d) const { return tg::chunk(*this, c, d); }

Tensor Tensor::neg() const { return tg::neg(*this); }
Tensor Tensor::exp() const { return tg::exp(*this); }
Tensor Tensor::log() const { return tg::log(*this); }
Tensor Tensor::sqrt() const { return tg::sqrt(*this); }
Tensor Tensor::rsqrt() const { return tg::rsqrt(*this); }
Tensor Tensor::abs() const { return tg::abs(*this); }
Tensor Tensor::tanh() const { return tg::tanh(*this); }
Tensor Tensor::sigmoid() const { return tg::sigmoid(*this); }
Tensor Tensor::relu() const { return tg::relu(*this); }
Tensor Tensor::pow(double e) const { return tg::pow(*this, e); }
Tensor Tensor::pow(const Tensor& e) const { return tg::pow(*this, e); }
Tensor Tensor::clamp(double lo, double hi) const { return tg::clamp(*this, lo, hi); }
Tensor Tensor::clamp_min(double lo) const { return tg::clamp_min(*this, lo); }
Tensor Tensor::clamp_max(double hi) const { return tg::clamp_max(*this, hi); }
Tensor Tensor::add(const Tensor& o) const { return tg::add(*this, o); }
Tensor Tensor::sub(const Tensor& o) const { return tg::sub(*this, o); }
Tensor Tensor::mul(const Tensor& o) const { return tg::mul(*this, o); }
Tensor Tensor::div(const Tensor& o) const { return tg::div(*this, o); }
Tensor Tensor::eq(const Tensor& o) const { return tg::eq(*this, o); }
Tensor Tensor::ne(const Tensor& o) const { return tg::ne(*this, o); }
Tensor Tensor::lt(const Tensor& o) const { return tg::lt(*this, o); }
Tensor Tensor::le(const Tensor& o) const { return tg::le(*this, o); }
Tensor Tensor::gt(const Tensor& o) const { return tg::gt(*this, o); }
Tensor Tensor::ge(const Tensor& o) const { return tg::ge(*this, o); }
Tensor Tensor::masked_fill(const Tensor& m, double v) const { return tg::masked_fill(*this, m, v); }

Tensor Tensor::sum() const { return tg::sum(*this); }
Tensor Tensor::sum(int64_t d, bool k) const { return tg::sum(*this, Shape{d}, k); }
Tensor Tensor::sum(const Shape& d, bool k) const { return tg::sum(*this, d, k); }
Tensor Tensor::mean() const { return tg::mean(*this); }
Tensor Tensor::mean(int64_t d, bool k) const { return tg::mean(*this, Shape{d}, k); }
Tensor Tensor::mean(const Shape& d, bool k) const { return tg::mean(*this, d, k); }
Tensor Tensor::max() const { return tg::max(*this); }
std::tuple<Tensor, Tensor> Tensor::max(int64_t d, bool k) const { return tg::max(*this, d, k); }
Tensor Tensor::min() const { return tg::min(*this); }
std::tuple<Tensor, Tensor> Tensor::min(int64_t d, bool k) const { return tg::min(*this, d, k); }
Tensor Tensor::argmax() const { return tg::argmax(*this); }
Tensor Tensor::argmax(int64_t d, bool k) const { return tg::argmax(*this, d, k); }
Tensor Tensor::argmin(int64_t d, bool k) const { return tg::argmin(*this, d, k); }
Tensor Tensor::var(const Shape& d, int64_t c, bool k) const { return tg::var(*this, d, c, k); }
Tensor Tensor::var(int64_t d, int64_t c, bool k) const { return tg::var(*this, Shape{d}, c, k); }
Tensor Tensor::logsumexp(const Shape& d, bool k) const { return tg::logsumexp(*this, d, k); }
Tensor Tensor::logsumexp(int64_t d, bool k) const { return tg::logsumexp(*this, Shape{d}, k); }
Tensor Tensor::cumsum(int64_t d) const { return tg::cumsum(*this, d); }
Tensor Tensor::softmax(int64_t d) const { return tg::softmax(*this, d); }
Tensor Tensor::log_softmax(int64_t d) const { return tg::log_softmax(*this, d); }
Tensor Tensor::matmul(const Tensor& o) const { return tg::matmul(*this, o); }
Tensor Tensor::index_select(int64_t d, const Tensor& i) const { return tg::index_select(*this, d, i); }
Tensor Tensor::gather(int64_t d, const Tensor& i) const { return tg::gather(*this, d, i); }

// ---- operators
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return rsub(b, a); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return rdiv(b, a); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, double b) { return ne(a, b); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }
Tensor& operator+=(Tensor& a, const Tensor& b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, const Tensor& b) { return a.add_(b, -1.0); }
Tensor& operator*=(Tensor& a, double b) { return a.mul_(b); }

// ---- printing
namespace {
void print_values(std::ostream& os, const std::vector<double>& v, const Shape& sizes, size_t d, int64_t& pos,
                  bool integral, int indent) {
  if (sizes.empty()) {
    os << (integral ? fmt::format("{}", static_cast<int64_t>(v[0])) : fmt::format("{:.4f}", v[0]));
    return;
  }
  int64_t n = sizes[d];
  int64_t inner = 1;
  for (size_t k = d + 1; k < sizes.size(); ++k) inner *= sizes[k];
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (n > 8 && i == 3) {  // summarise long dims as PyTorch does
      os << "...";
      pos += (n - 6) * inner;
      i = n - 3;
      os << (d + 1 == sizes.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
    }
    if (d + 1 == sizes.size()) {
      double x = v[pos++];
      os << (integral ? fmt::format("{}", static_cast<int64_t>(x)) : fmt::format("{:.4f}", x));
    } else {
      print_values(os, v, sizes, d + 1, pos, integral, indent + 1);
    }
    if (i + 1 < n) os << (d + 1 == sizes.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(";
  std::vector<double> v = to_vector<double>();
  int64_t pos = 0;
  print_values(os, v, sizes(), 0, pos, !is_floating(dtype()), 7);
  os << ", shape=" << shape_str(sizes()) << ", dtype=" << dtype_name(dtype());
  if (!device().is_cpu()) os << ", device=" << device().str();
  if (grad_fn()) os << ", grad_fn=" << grad_fn()->name;
  else if (requires_grad()) os << ", requires_grad=true";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace tg
