// Factories: constant, range, random and from-data tensors. Random values are drawn serially from the default
// generator, so a seed fixes them whatever the thread count.
#include <cmath>
#include <cstring>

#include "backends/backend.h"
#include "core/ops.h"
#include "core/random.h"

namespace tg {

namespace {

// Builds a CPU tensor by writing values, then moves it to the requested device.
template <class F> Tensor generate(const Shape& sizes, TensorOptions opt, F f) {
  Tensor t = empty(sizes, TensorOptions(opt.dtype_));
  dispatch(opt.dtype_, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = f.template operator()<T>(i);
  });
  if (!opt.device_.is_cpu()) t = t.to(opt.device_);
  if (opt.requires_grad_) t.requires_grad_(true);
  return t;
}

// Negative sizes are refused by empty() too; checking here names the factory the caller used.
void check_sizes(const char* op, const Shape& sizes) {
  for (int64_t d : sizes) TG_CHECK(d >= 0, "{}: negative dimension in shape {}", op, shape_str(sizes));
}

}  // namespace

Tensor empty_like(const Tensor& t) { return empty(t.sizes(), t.options()); }

Tensor full(const Shape& sizes, double value, TensorOptions opt) {
  check_sizes("full", sizes);
  Tensor t = empty(sizes, opt.requires_grad(false));
  backend_for(t).fill(t, value);
  if (opt.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor zeros(const Shape& sizes, TensorOptions opt) {
  check_sizes("zeros", sizes);
  return full(sizes, 0.0, opt);
}
Tensor ones(const Shape& sizes, TensorOptions opt) {
  check_sizes("ones", sizes);
  return full(sizes, 1.0, opt);
}
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), t.options()); }
Tensor full_like(const Tensor& t, double value) { return full(t.sizes(), value, t.options()); }
Tensor scalar_tensor(double value, TensorOptions opt) { return full({}, value, opt); }

Tensor arange(double end, TensorOptions opt) { return arange(0, end, 1, opt); }

Tensor arange(double start, double end, double step, TensorOptions opt) {
  TG_CHECK(step != 0, "arange: step must be non-zero");
  TG_CHECK(std::isfinite(start) && std::isfinite(end), "arange: start and end must be finite");
  TG_CHECK((end - start) / step >= 0 || start == end, "arange: upper bound {} and lower bound {} inconsistent with "
           "step sign {}", end, start, step);
  auto n = static_cast<int64_t>(std::ceil((end - start) / step));
  return generate({std::max<int64_t>(n, 0)}, opt,
                  [&]<class T>(int64_t i) { return scalar_cast<T>(start + static_cast<double>(i) * step); });
}

Tensor linspace(double start, double end, int64_t steps, TensorOptions opt) {
  TG_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got {}", steps);
  double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0;
  return generate({steps}, opt, [&]<class T>(int64_t i) { return scalar_cast<T>(start + static_cast<double>(i) * step); });
}

Tensor eye(int64_t n, TensorOptions opt) {
  TG_CHECK(n >= 0, "eye: n must be non-negative, got {}", n);
  return generate({n, n}, opt, [&]<class T>(int64_t i) { return static_cast<T>(i / n == i % n); });
}

Tensor rand(const Shape& sizes, TensorOptions opt) {
  TG_CHECK(is_floating(opt.dtype_), "rand: expected a floating dtype, got {}", dtype_name(opt.dtype_));
  check_sizes("rand", sizes);
  Generator& g = default_generator();
  return generate(sizes, opt, [&]<class T>(int64_t) {
    T v = static_cast<T>(g.uniform());
    return v < T(1) ? v : std::nextafter(T(1), T(0));  // float32 rounding could reach 1
  });
}

Tensor randn(const Shape& sizes, TensorOptions opt) {
  TG_CHECK(is_floating(opt.dtype_), "randn: expected a floating dtype, got {}", dtype_name(opt.dtype_));
  check_sizes("randn", sizes);
  Generator& g = default_generator();
  return generate(sizes, opt, [&]<class T>(int64_t) { return static_cast<T>(g.normal()); });
}

Tensor randint(int64_t low, int64_t high, const Shape& sizes, TensorOptions opt) {
  TG_CHECK(low < high, "randint: expected low < high, got low={} high={}", low, high);
  check_sizes("randint", sizes);
  Generator& g = default_generator();
  const auto range = static_cast<uint64_t>(high - low);
  return generate(sizes, opt, [&]<class T>(int64_t) {
    // rejection sampling: no modulo bias
    uint64_t limit = UINT64_MAX - UINT64_MAX % range, v;
    do v = g.next_u64();
    while (v >= limit);
    return static_cast<T>(low + static_cast<int64_t>(v % range));
  });
}

Tensor rand_like(const Tensor& t) { return rand(t.sizes(), t.options()); }
Tensor randn_like(const Tensor& t) { return randn(t.sizes(), t.options()); }

Tensor randperm(int64_t n, TensorOptions opt) {
  TG_CHECK(n >= 0, "randperm: n must be non-negative, got {}", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  Generator& g = default_generator();
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[g.next_u64() % static_cast<uint64_t>(i + 1)]);
  return generate({n}, opt, [&]<class T>(int64_t i) { return static_cast<T>(p[i]); });
}

template <class T> Tensor tensor(const std::vector<T>& values, const Shape& sizes, TensorOptions opt) {
  Shape s = sizes.empty() && values.size() != 1 ? Shape{static_cast<int64_t>(values.size())} : sizes;
  TG_CHECK(shape_numel(s) == static_cast<int64_t>(values.size()), "tensor: {} values cannot have shape {}",
           values.size(), shape_str(s));
  Tensor t = empty(s, TensorOptions(dtype_of<T>()));
  if (!values.empty()) std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(T));
  if (!opt.device_.is_cpu()) t = t.to(opt.device_);
  if (opt.requires_grad_) t.requires_grad_(true);
  return t;
}
template Tensor tensor<float>(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor tensor<double>(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor tensor<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);

template <> Tensor tensor<int>(const std::vector<int>& values, const Shape& sizes, TensorOptions opt) {
  return tensor(std::vector<int64_t>(values.begin(), values.end()), sizes, opt);
}

Tensor tensor(const std::vector<bool>& values, const Shape& sizes, TensorOptions opt) {
  Shape s = sizes.empty() && values.size() != 1 ? Shape{static_cast<int64_t>(values.size())} : sizes;
  TG_CHECK(shape_numel(s) == static_cast<int64_t>(values.size()), "tensor: {} values cannot have shape {}",
           values.size(), shape_str(s));
  Tensor t = empty(s, TensorOptions(kBool));
  bool* p = t.data<bool>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return opt.device_.is_cpu() ? t : t.to(opt.device_);
}

Tensor from_blob(void* data, const Shape& sizes, std::function<void(void*)> deleter, TensorOptions opt) {
  TG_CHECK(data != nullptr || shape_numel(sizes) == 0, "from_blob: null data pointer for shape {}", shape_str(sizes));
  auto st = std::make_shared<Storage>();
  st->data = data;
  st->nbytes = static_cast<size_t>(shape_numel(sizes)) * element_size(opt.dtype_);
  st->device = opt.device_;
  st->deleter = std::move(deleter);
  Tensor t = make_tensor(std::move(st), sizes, contiguous_strides(sizes), 0, opt.dtype_);
  if (opt.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor from_blob(void* data, const Shape& sizes, TensorOptions opt) { return from_blob(data, sizes, nullptr, opt); }

}  // namespace tg
