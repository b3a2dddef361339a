// Index kernels on CUDA: gather / index_select, scatter_add / index_add (atomic adds, since several source
// elements may land on one slot), tril/triu, and the plain batched product for integer matmul. The host has already
// checked that every index is in range (autograd/functions/copy.cpp checked_index).
#include "backends/cuda/launch.cuh"

namespace tg::cuda {

namespace {

template <class T> struct GatherFn {
  int64_t step;
  char* out;
  const char *x, *index;
  __device__ void operator()(const int64_t (&off)[3]) const {
    const int64_t j = at<int64_t>(index, off[2]);
    at<T>(out, off[0]) = reinterpret_cast<const T*>(x + off[1])[j * step];
  }
};

template <class T> __device__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, int64_t>)
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));  // two's complement
  else atomicAdd(p, v);
}

template <class T> struct ScatterAddFn {
  int64_t step;
  char* out;
  const char *index, *src;
  __device__ void operator()(const int64_t (&off)[3]) const {
    const int64_t j = at<int64_t>(index, off[1]);
    atomic_add(reinterpret_cast<T*>(out + off[0]) + j * step, at<T>(src, off[2]));
  }
};

template <class T> __global__ void triangle_kernel(int64_t n, int64_t rows, int64_t cols, int64_t k, bool upper,
                                                   T* out, const T* x) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t c = i % cols, r = (i / cols) % rows;
    const bool keep = upper ? c - r >= k : c - r <= k;
    out[i] = keep ? x[i] : T(0);
  }
}

template <class T> __global__ void naive_matmul_kernel(int64_t B, int64_t M, int64_t N, int64_t K, const T* a,
                                                       int64_t as0, int64_t as1, int64_t as2, const T* b, int64_t bs0,
                                                       int64_t bs1, int64_t bs2, T* out) {
  const int64_t total = B * M * N, stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t n = i % N, m = (i / N) % M, bi = i / (M * N);
    T acc = 0;
    for (int64_t k = 0; k < K; ++k) acc += a[bi * as0 + m * as1 + k * as2] * b[bi * bs0 + k * bs1 + n * bs2];
    out[i] = acc;
  }
}

}  // namespace

template <class T> void launch_gather(const Indexer<3>& ix, int64_t step, char* out, const char* x, const char* index,
                                      cudaStream_t s) {
  run_elementwise(ix, GatherFn<T>{step, out, x, index}, s);
}
template <class T> void launch_scatter_add(const Indexer<3>& ix, int64_t step, char* out, const char* index,
                                           const char* src, cudaStream_t s) {
  run_elementwise(ix, ScatterAddFn<T>{step, out, index, src}, s);
}
template <class T> void launch_triangle(int64_t batch, int64_t rows, int64_t cols, int64_t k, bool upper, T* out,
                                        const T* x, cudaStream_t s) {
  const int64_t n = batch * rows * cols;
  if (n == 0) return;
  triangle_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, rows, cols, k, upper, out, x);
}
template <class T> void launch_naive_matmul(int64_t B, int64_t M, int64_t N, int64_t K, const T* a, int64_t as0,
                                            int64_t as1, int64_t as2, const T* b, int64_t bs0, int64_t bs1,
                                            int64_t bs2, T* out, cudaStream_t s) {
  const int64_t n = B * M * N;
  if (n == 0) return;
  naive_matmul_kernel<T><<<grid_for(n), kBlock, 0, s>>>(B, M, N, K, a, as0, as1, as2, b, bs0, bs1, bs2, out);
}

#define TG_INSTANTIATE(T)                                                                                         \
  template void launch_gather<T>(const Indexer<3>&, int64_t, char*, const char*, const char*, cudaStream_t);     \
  template void launch_triangle<T>(int64_t, int64_t, int64_t, int64_t, bool, T*, const T*, cudaStream_t);
TG_INSTANTIATE(bool)
TG_INSTANTIATE(int64_t)
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE
#define TG_INSTANTIATE(T) \
  template void launch_scatter_add<T>(const Indexer<3>&, int64_t, char*, const char*, const char*, cudaStream_t);
TG_INSTANTIATE(int64_t)
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE
template void launch_naive_matmul<int64_t>(int64_t, int64_t, int64_t, int64_t, const int64_t*, int64_t, int64_t,
                                           int64_t, const int64_t*, int64_t, int64_t, int64_t, int64_t*, cudaStream_t);

}  // namespace tg::cuda
