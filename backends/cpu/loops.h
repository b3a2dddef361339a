// The elementwise loop every CPU kernel shares: N operands with their own strides over one shape, size-1 dims
// dropped and adjacent dims coalesced, the innermost dim handed to a kernel-specific inner loop, and rows (or, when
// there are few rows, column blocks) split among OpenMP threads above a size threshold.
#pragma once
#include <omp.h>

#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tg::cpu {

// Below this many elements a loop stays on one thread: waking a second thread (microseconds when OpenMP spins,
// tens of them under OMP_WAIT_POLICY=PASSIVE) costs more than it saves on a memory-bound loop this short.
inline constexpr int64_t kParallelGrain = 65536;

// One operand of a loop: its first element and its strides (in elements) over the loop's shape.
struct Operand {
  char* ptr;
  const int64_t* strides;  // one per loop dim; nullptr means every stride is 0 (a broadcast scalar)
  int64_t esize;
};

inline Operand operand(const Tensor& t, const Shape& strides_over_loop) {
  return {static_cast<char*>(t.data_ptr()), strides_over_loop.data(), static_cast<int64_t>(element_size(t.dtype()))};
}
inline Operand operand(const Tensor& t) { return operand(t, t.strides()); }

template <size_t N> struct Geometry {
  std::vector<int64_t> sizes;                   // coalesced, innermost last
  std::vector<std::array<int64_t, N>> strides;  // bytes, per coalesced dim
  int64_t numel = 1;
};

template <size_t N> Geometry<N> make_geometry(const Shape& sizes, const std::array<Operand, N>& ops) {
  Geometry<N> g;
  for (size_t d = 0; d < sizes.size(); ++d) {
    g.numel *= sizes[d];
    if (sizes[d] == 1) continue;
    std::array<int64_t, N> st;
    for (size_t k = 0; k < N; ++k) st[k] = ops[k].strides ? ops[k].strides[d] * ops[k].esize : 0;
    if (!g.sizes.empty()) {
      bool merge = true;
      for (size_t k = 0; k < N; ++k) merge = merge && g.strides.back()[k] == st[k] * sizes[d];
      if (merge) {
        g.sizes.back() *= sizes[d];
        g.strides.back() = st;
        continue;
      }
    }
    g.sizes.push_back(sizes[d]);
    g.strides.push_back(st);
  }
  return g;
}

// Runs inner(ptrs, n, inner_strides_bytes) over rows [r0, r1) and columns [c0, c1) of the geometry.
template <size_t N, class Inner>
void run_block(const Geometry<N>& g, const std::array<char*, N>& base, int64_t r0, int64_t r1, int64_t c0,
               int64_t c1, Inner& inner) {
  const size_t D = g.sizes.size();
  const std::array<int64_t, N> zero{};
  if (D == 0) {
    inner(base, int64_t{1}, zero);
    return;
  }
  const auto& st_in = g.strides[D - 1];
  std::vector<int64_t> idx(D - 1, 0);
  std::array<char*, N> p = base;
  int64_t rem = r0;
  for (size_t d = D - 1; d-- > 0;) {  // multi-index of row r0
    idx[d] = rem % g.sizes[d];
    rem /= g.sizes[d];
    for (size_t k = 0; k < N; ++k) p[k] += idx[d] * g.strides[d][k];
  }
  for (int64_t r = r0; r < r1; ++r) {
    std::array<char*, N> q;
    for (size_t k = 0; k < N; ++k) q[k] = p[k] + c0 * st_in[k];
    inner(q, c1 - c0, st_in);
    for (size_t d = D - 1; d-- > 0;) {  // odometer step
      for (size_t k = 0; k < N; ++k) p[k] += g.strides[d][k];
      if (++idx[d] < g.sizes[d]) break;
      for (size_t k = 0; k < N; ++k) p[k] -= g.sizes[d] * g.strides[d][k];
      idx[d] = 0;
    }
  }
}

// Calls inner for every innermost run of the loop over `sizes`, in parallel when the loop has at least `grain`
// elements (callers whose elements are expensive, such as reductions, pass a smaller grain).
template <size_t N, class Inner>
void for_each(const Shape& sizes, const std::array<Operand, N>& ops, Inner&& inner, int64_t grain = kParallelGrain) {
  Geometry<N> g = make_geometry(sizes, ops);
  if (g.numel == 0) return;
  std::array<char*, N> base;
  for (size_t k = 0; k < N; ++k) base[k] = ops[k].ptr;
  int64_t cols = g.sizes.empty() ? 1 : g.sizes.back();
  int64_t rows = g.numel / cols;
  int threads = omp_get_max_threads();
  if (g.numel < grain || threads == 1 || omp_in_parallel()) {
    run_block(g, base, 0, rows, 0, cols, inner);
    return;
  }
  if (rows >= 4 * threads) {
#pragma omp parallel
    {
      int t = omp_get_thread_num(), nt = omp_get_num_threads();
      int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
      if (r0 < r1) run_block(g, base, r0, r1, 0, cols, inner);
    }
  } else {
#pragma omp parallel
    {
      int t = omp_get_thread_num(), nt = omp_get_num_threads();
      int64_t c0 = cols * t / nt, c1 = cols * (t + 1) / nt;
      if (c0 < c1) run_block(g, base, 0, rows, c0, c1, inner);
    }
  }
}

// out[i] = f(x[i]) with a dense fast path; TOut/TIn are the element types.
template <class TOut, class TIn, class F> void map1(const Tensor& x, const Shape& x_strides, const Tensor& out, F f) {
  for_each(out.sizes(), std::array<Operand, 2>{operand(out), operand(x, x_strides)},
           [&](const std::array<char*, 2>& p, int64_t n, const std::array<int64_t, 2>& st) {
             TOut* o = reinterpret_cast<TOut*>(p[0]);
             const TIn* a = reinterpret_cast<const TIn*>(p[1]);
             if (st[0] == sizeof(TOut) && st[1] == sizeof(TIn)) {
               for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
             } else {
               for (int64_t i = 0; i < n; ++i)
                 *reinterpret_cast<TOut*>(p[0] + i * st[0]) = f(*reinterpret_cast<const TIn*>(p[1] + i * st[1]));
             }
           });
}

// out[i] = f(a[i], b[i]); a or b may be a broadcast (stride 0) operand, which gets its own fast path.
template <class TOut, class T, class F> void map2(const Operand& a, const Operand& b, const Tensor& out, F f) {
  for_each(out.sizes(), std::array<Operand, 3>{operand(out), a, b},
           [&](const std::array<char*, 3>& p, int64_t n, const std::array<int64_t, 3>& st) {
             TOut* o = reinterpret_cast<TOut*>(p[0]);
             const T* x = reinterpret_cast<const T*>(p[1]);
             const T* y = reinterpret_cast<const T*>(p[2]);
             constexpr int64_t s = sizeof(T);
             if (st[0] == sizeof(TOut) && st[1] == s && st[2] == s) {
               for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
             } else if (st[0] == sizeof(TOut) && st[1] == s && st[2] == 0) {
               const T yv = *y;
               for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
             } else if (st[0] == sizeof(TOut) && st[1] == 0 && st[2] == s) {
               const T xv = *x;
               for (int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
             } else {
               for (int64_t i = 0; i < n; ++i)
                 *reinterpret_cast<TOut*>(p[0] + i * st[0]) =
                     f(*reinterpret_cast<const T*>(p[1] + i * st[1]), *reinterpret_cast<const T*>(p[2] + i * st[2]));
             }
           });
}

}  // namespace tg::cpu
