// Reductions and row kernels on CUDA: sum / max / min / argmax / argmin over any set of dims (one thread block per
// output element, a shared-memory tree inside the block), cumsum (one thread per row), and softmax / log_softmax
// forward and backward (one block per row). Semantics are the CPU backend's (backends/cpu/reduce.cpp,
// softmax.cpp): sums accumulate in double (int64 for integers); max/min return the first extreme, and a NaN wins.
#include <cfloat>
#include <cmath>

#include "backends/cuda/launch.cuh"

namespace tg::cuda {

namespace {

constexpr int kReduceBlock = 256;

// The byte offset of the i-th element (row-major) of the reduced region.
__device__ int64_t region_offset(const ReduceGeometry& g, int64_t i) {
  int64_t off = 0;
  for (int d = g.rdims - 1; d >= 0; --d) {
    off += (i % g.rsizes[d]) * g.rstrides[d];
    i /= g.rsizes[d];
  }
  return off;
}

// The running extreme of max/min/arg reductions: value, its index in the region, and whether it is NaN.
template <class T> struct Best {
  T v;
  int64_t i;
};

template <class T> __device__ bool is_nan(T v) { return v != v; }

// Whether candidate b replaces a: NaN beats everything (the first NaN), then the strict extreme, then the
// lower index on ties, so the result is the sequential scan's.
template <class T> __device__ bool better(const Best<T>& b, const Best<T>& a, bool want_max) {
  if (b.i < 0) return false;
  if (a.i < 0) return true;
  const bool bn = is_nan(b.v), an = is_nan(a.v);
  if (an || bn) return bn && (!an || b.i < a.i);
  if (b.v == a.v) return b.i < a.i;
  return want_max ? b.v > a.v : b.v < a.v;
}

template <class T> __global__ void reduce_kernel(ReduceOp op, ReduceGeometry g, char* out, const char* x) {
  __shared__ Acc<T> sum[kReduceBlock];
  __shared__ Best<T> best[kReduceBlock];
  const bool is_sum = op == ReduceOp::Sum, want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
  const bool is_arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  for (int64_t o = blockIdx.x; o < g.outer.numel; o += gridDim.x) {
    int64_t off[2];
    g.outer.offsets(o, off);
    const char* base = x + off[1];
    Acc<T> s = 0;
    Best<T> b{T(0), -1};
    for (int64_t i = threadIdx.x; i < g.rcount; i += blockDim.x) {
      const T v = at<T>(base, region_offset(g, i));
      if (is_sum) s += v;
      else if (better(Best<T>{v, i}, b, want_max)) b = Best<T>{v, i};
    }
    sum[threadIdx.x] = s;
    best[threadIdx.x] = b;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
      if (threadIdx.x < w) {
        if (is_sum) sum[threadIdx.x] += sum[threadIdx.x + w];
        else if (better(best[threadIdx.x + w], best[threadIdx.x], want_max)) best[threadIdx.x] = best[threadIdx.x + w];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (is_sum) at<T>(out, off[0]) = static_cast<T>(sum[0]);
      else if (is_arg) at<int64_t>(out, off[0]) = best[0].i < 0 ? 0 : best[0].i;
      else at<T>(out, off[0]) = best[0].v;
    }
    __syncthreads();
  }
}

template <class T> __global__ void cumsum_kernel(Indexer<2> rows, int64_t n, int64_t os, int64_t xs, bool reverse,
                                                 char* out, const char* x) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows.numel; r += stride) {
    int64_t off[2];
    rows.offsets(r, off);
    Acc<T> acc = 0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t j = reverse ? n - 1 - k : k;
      acc += at<T>(x, off[1] + j * xs);
      at<T>(out, off[0] + j * os) = static_cast<T>(acc);
    }
  }
}

template <class T> __global__ void softmax_kernel(Indexer<2> rows, int64_t n, int64_t os, int64_t xs, bool log,
                                                  char* out, const char* x) {
  __shared__ double scratch[kRowBlock];
  for (int64_t r = blockIdx.x; r < rows.numel; r += gridDim.x) {
    int64_t off[2];
    rows.offsets(r, off);
    const char* xr = x + off[1];
    char* orow = out + off[0];
    double m = -INFINITY;
    bool nan = false;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      const T v = at<T>(xr, k * xs);
      nan = nan || v != v;
      m = fmax(m, static_cast<double>(v));
    }
    m = block_max(m, scratch);
    if (block_sum(nan ? 1.0 : 0.0, scratch) > 0) m = NAN;  // fmax drops NaN; the CPU's std::max keeps it
    if (isinf(m) && m < 0) m = 0;  // an all -inf row gives nan, as in PyTorch, without inf - inf here
    const T mt = static_cast<T>(m);
    double s = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += exp(at<T>(xr, k * xs) - mt);
    s = block_sum(s, scratch);
    if (log) {
      const T lse = mt + static_cast<T>(::log(s));
      for (int64_t k = threadIdx.x; k < n; k += blockDim.x) at<T>(orow, k * os) = at<T>(xr, k * xs) - lse;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t k = threadIdx.x; k < n; k += blockDim.x) at<T>(orow, k * os) = exp(at<T>(xr, k * xs) - mt) * inv;
    }
  }
}

template <class T> __global__ void softmax_backward_kernel(Indexer<3> rows, int64_t n, int64_t gxs, int64_t ys,
                                                           int64_t gys, bool log, char* gx, const char* y,
                                                           const char* gy) {
  __shared__ double scratch[kRowBlock];
  for (int64_t r = blockIdx.x; r < rows.numel; r += gridDim.x) {
    int64_t off[3];
    rows.offsets(r, off);
    double s = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      const T g = at<T>(gy + off[2], k * gys);
      s += log ? static_cast<double>(g) : static_cast<double>(g * at<T>(y + off[1], k * ys));
    }
    const T st = static_cast<T>(block_sum(s, scratch));
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      const T yv = at<T>(y + off[1], k * ys), g = at<T>(gy + off[2], k * gys);
      at<T>(gx + off[0], k * gxs) = log ? g - exp(yv) * st : yv * (g - st);
    }
  }
}

unsigned blocks_for(int64_t outputs) { return static_cast<unsigned>(outputs < 65535 ? (outputs > 0 ? outputs : 1) : 65535); }

}  // namespace

template <class T> void launch_reduce(ReduceOp op, const ReduceGeometry& g, char* out, const char* x, cudaStream_t s) {
  if (g.outer.numel == 0) return;
  reduce_kernel<T><<<blocks_for(g.outer.numel), kReduceBlock, 0, s>>>(op, g, out, x);
}
template <class T> void launch_cumsum(const Indexer<2>& rows, int64_t n, int64_t os, int64_t xs, bool reverse,
                                      char* out, const char* x, cudaStream_t s) {
  if (rows.numel == 0 || n == 0) return;
  cumsum_kernel<T><<<grid_for(rows.numel), kBlock, 0, s>>>(rows, n, os, xs, reverse, out, x);
}
template <class T> void launch_softmax(const Indexer<2>& rows, int64_t n, int64_t os, int64_t xs, bool log, char* out,
                                       const char* x, cudaStream_t s) {
  if (rows.numel == 0 || n == 0) return;
  softmax_kernel<T><<<blocks_for(rows.numel), kRowBlock, 0, s>>>(rows, n, os, xs, log, out, x);
}
template <class T> void launch_softmax_backward(const Indexer<3>& rows, int64_t n, int64_t gxs, int64_t ys,
                                                int64_t gys, bool log, char* gx, const char* y, const char* gy,
                                                cudaStream_t s) {
  if (rows.numel == 0 || n == 0) return;
  softmax_backward_kernel<T><<<blocks_for(rows.numel), kRowBlock, 0, s>>>(rows, n, gxs, ys, gys, log, gx, y, gy);
}

#define TG_INSTANTIATE(T)                                                                                        \
  template void launch_reduce<T>(ReduceOp, const ReduceGeometry&, char*, const char*, cudaStream_t);            \
  template void launch_cumsum<T>(const Indexer<2>&, int64_t, int64_t, int64_t, bool, char*, const char*, cudaStream_t);
TG_INSTANTIATE(int64_t)
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE
#define TG_INSTANTIATE(T)                                                                                        \
  template void launch_softmax<T>(const Indexer<2>&, int64_t, int64_t, int64_t, bool, char*, const char*,       \
                                  cudaStream_t);                                                                 \
  template void launch_softmax_backward<T>(const Indexer<3>&, int64_t, int64_t, int64_t, int64_t, bool, char*,  \
                                           const char*, const char*, cudaStream_t);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::cuda
