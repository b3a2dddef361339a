// Reductions (sum, max, min, argmax, argmin) over any set of dims, and cumsum.
// The loop runs over output elements (loops.h for_each); each reduces over the coalesced reduced dims. When the
// reduced dims are outer and the kept dim is dense (a bias gradient: sum over rows), it accumulates whole rows
// instead, so the inner loop stays contiguous.
#include <cmath>
#include <limits>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

// The reduced part of x: coalesced sizes and byte strides, outermost first.
struct ReducedDims {
  std::vector<int64_t> sizes, strides;
  int64_t count = 1;
};

ReducedDims reduced_dims(const Tensor& x, const Shape& dims) {
  ReducedDims r;
  int64_t es = static_cast<int64_t>(element_size(x.dtype()));
  for (int64_t d : dims) {
    int64_t n = x.size(d), st = x.stride(d) * es;
    r.count *= n;
    if (n == 1) continue;
    if (!r.sizes.empty() && r.strides.back() == st * n) {
      r.sizes.back() *= n;
      r.strides.back() = st;
    } else {
      r.sizes.push_back(n);
      r.strides.push_back(st);
    }
  }
  return r;
}

// Calls f(ptr) for every element of the reduced region starting at base, in row-major order.
template <class F> void visit(const ReducedDims& r, const char* base, F&& f) {
  if (r.count == 0) return;  // a size-0 dim anywhere: nothing to read (the odometer below would run the inner dim)
  size_t D = r.sizes.size();
  if (D == 0) return f(base);
  if (D == 1) {
    for (int64_t i = 0; i < r.sizes[0]; ++i) f(base + i * r.strides[0]);
    return;
  }
  std::vector<int64_t> idx(D, 0);
  const char* p = base;
  while (true) {
    for (int64_t i = 0; i < r.sizes[D - 1]; ++i) f(p + i * r.strides[D - 1]);
    size_t d = D - 1;
    while (d-- > 0) {
      p += r.strides[d];
      if (++idx[d] < r.sizes[d]) break;
      p -= r.sizes[d] * r.strides[d];
      idx[d] = 0;
    }
    if (d == static_cast<size_t>(-1)) return;
  }
}

template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <class T> void reduce_typed(ReduceOp op, const Tensor& x, const Shape& dims, const Tensor& out) {
  ReducedDims r = reduced_dims(x, dims);
  int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, r.count));
  const bool is_arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  const bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;

  // Sum with a dense kept dim and strided reduced dims: accumulate rows.
  const bool rows_path = op == ReduceOp::Sum && !r.sizes.empty() && r.strides.back() != sizeof(T);
  for_each(out.sizes(), std::array<Operand, 2>{operand(out), operand(x)},
           [&](const std::array<char*, 2>& p, int64_t n, const std::array<int64_t, 2>& st) {
             if (rows_path && st[1] == sizeof(T) && n > 1) {
               std::vector<Acc<T>> acc(static_cast<size_t>(n), Acc<T>(0));
               visit(r, p[1], [&](const char* q) {
                 const T* row = reinterpret_cast<const T*>(q);
                 for (int64_t i = 0; i < n; ++i) acc[i] += row[i];
               });
               for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * st[0]) = static_cast<T>(acc[i]);
               return;
             }
             for (int64_t i = 0; i < n; ++i) {
               const char* base = p[1] + i * st[1];
               char* o = p[0] + i * st[0];
               if (op == ReduceOp::Sum) {
                 Acc<T> acc = 0;
                 if (r.sizes.size() == 1 && r.strides[0] == sizeof(T)) {
                   const T* v = reinterpret_cast<const T*>(base);
                   for (int64_t k = 0; k < r.sizes[0]; ++k) acc += v[k];
                 } else {
                   visit(r, base, [&](const char* q) { acc += *reinterpret_cast<const T*>(q); });
                 }
                 *reinterpret_cast<T*>(o) = static_cast<T>(acc);
                 continue;
               }
               T best = *reinterpret_cast<const T*>(base);
               int64_t best_i = 0, k = 0;
               bool done = false;
               visit(r, base, [&](const char* q) {
                 if (done) return;
                 T v = *reinterpret_cast<const T*>(q);
                 if (v != v) {  // NaN wins and stops the search, as in PyTorch
                   best = v;
                   best_i = k;
                   done = true;
                 } else if (want_max ? v > best : v < best) {
                   best = v;
                   best_i = k;
                 }
                 ++k;
               });
               if (is_arg) *reinterpret_cast<int64_t*>(o) = best_i;
               else *reinterpret_cast<T*>(o) = best;
             }
           },
           grain);
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, const Shape& dims, const Tensor& out) {
  dispatch(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("cpu reduce: bool input (convert to int64 first)");
    else reduce_typed<T>(op, x, dims, out);
  });
}

void CpuBackend::cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) {
  // Loop over every position but dim (dim set to size 1), then scan along dim.
  Shape outer = x.sizes();
  int64_t n = outer[dim];
  outer[dim] = 1;
  dispatch(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("cpu cumsum: bool input");
    else {
      int64_t xs = x.stride(dim), os = out.stride(dim);
      for_each(outer, std::array<Operand, 2>{operand(out), operand(x)},
               [&](const std::array<char*, 2>& p, int64_t m, const std::array<int64_t, 2>& st) {
                 for (int64_t i = 0; i < m; ++i) {
                   T* o = reinterpret_cast<T*>(p[0] + i * st[0]);
                   const T* v = reinterpret_cast<const T*>(p[1] + i * st[1]);
                   Acc<T> acc = 0;
                   for (int64_t k = 0; k < n; ++k) {
                     int64_t j = reverse ? n - 1 - k : k;
                     acc += v[j * xs];
                     o[j * os] = static_cast<T>(acc);
                   }
                 }
               },
               std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, n)));
    }
  });
}

}  // namespace tg::cpu
