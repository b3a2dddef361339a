// Fused softmax / log_softmax along one dim, forward and backward, each one pass over a row after its max.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

// Calls f(out_row, x_row...) for every row along dim; rows are strided by the tensors' dim strides.
template <size_t N, class F> void for_each_row(const Tensor& like, int64_t dim, const std::array<Operand, N>& ops, F f) {
  Shape outer = like.sizes();
  int64_t n = outer[dim];
  outer[dim] = 1;
  for_each(outer, ops,
           [&](const std::array<char*, N>& p, int64_t m, const std::array<int64_t, N>& st) {
             for (int64_t i = 0; i < m; ++i) {
               std::array<char*, N> q;
               for (size_t k = 0; k < N; ++k) q[k] = p[k] + i * st[k];
               f(q, n);
             }
           },
           std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, n)));
}

}  // namespace

void CpuBackend::softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  dispatch_floating(x.dtype(), "softmax", [&]<class T>() {
    const int64_t xs = x.stride(dim), os = out.stride(dim);
    for_each_row(x, dim, std::array<Operand, 2>{operand(out), operand(x)}, [&](const std::array<char*, 2>& p, int64_t n) {
      T* o = reinterpret_cast<T*>(p[0]);
      const T* v = reinterpret_cast<const T*>(p[1]);
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t k = 0; k < n; ++k) m = std::max(m, v[k * xs]);
      if (std::isinf(m) && m < 0) m = 0;  // an all -inf row gives nan, as in PyTorch, without inf - inf here
      double s = 0;
      if (log) {
        for (int64_t k = 0; k < n; ++k) s += std::exp(v[k * xs] - m);
        T lse = m + static_cast<T>(std::log(s));
        for (int64_t k = 0; k < n; ++k) o[k * os] = v[k * xs] - lse;
      } else {
        for (int64_t k = 0; k < n; ++k) {
          T e = std::exp(v[k * xs] - m);
          o[k * os] = e;
          s += e;
        }
        T inv = static_cast<T>(1.0 / s);
        for (int64_t k = 0; k < n; ++k) o[k * os] *= inv;
      }
    });
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x) {
  dispatch_floating(y.dtype(), "softmax_backward", [&]<class T>() {
    const int64_t ys = y.stride(dim), gs = grad_y.stride(dim), xs = grad_x.stride(dim);
    for_each_row(y, dim, std::array<Operand, 3>{operand(grad_x), operand(y), operand(grad_y)},
                 [&](const std::array<char*, 3>& p, int64_t n) {
                   T* gx = reinterpret_cast<T*>(p[0]);
                   const T* yv = reinterpret_cast<const T*>(p[1]);
                   const T* gy = reinterpret_cast<const T*>(p[2]);
                   double s = 0;
                   if (log) {  // gx = gy - softmax * sum(gy)
                     for (int64_t k = 0; k < n; ++k) s += gy[k * gs];
                     for (int64_t k = 0; k < n; ++k) gx[k * xs] = gy[k * gs] - std::exp(yv[k * ys]) * static_cast<T>(s);
                   } else {  // gx = y * (gy - sum(gy * y))
                     for (int64_t k = 0; k < n; ++k) s += gy[k * gs] * yv[k * ys];
                     for (int64_t k = 0; k < n; ++k) gx[k * xs] = yv[k * ys] * (gy[k * gs] - static_cast<T>(s));
                   }
                 });
  });
}

}  // namespace tg::cpu
