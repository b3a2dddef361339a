// The loop every elementwise CUDA kernel shares: one thread per output element (grid-stride), each operand's
// address found from the Indexer, and the op a small device functor. Included by the .cu files only.
#pragma once
#include <type_traits>

#include "backends/cuda/kernels.h"

namespace tg::cuda {

inline constexpr int kBlock = 256;

inline unsigned grid_for(int64_t n) {
  const int64_t g = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(g < (1 << 20) ? (g > 0 ? g : 1) : (1 << 20));  // grid-stride beyond a million blocks
}

template <int N, class F> __global__ void elementwise_kernel(Indexer<N> ix, F f) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < ix.numel; i += stride) {
    int64_t off[N];
    ix.offsets(i, off);
    f(off);
  }
}

template <int N, class F> void run_elementwise(const Indexer<N>& ix, const F& f, cudaStream_t s) {
  if (ix.numel == 0) return;
  elementwise_kernel<N, F><<<grid_for(ix.numel), kBlock, 0, s>>>(ix, f);
}

template <class T> __device__ inline T& at(char* base, int64_t off) { return *reinterpret_cast<T*>(base + off); }
template <class T> __device__ inline const T& at(const char* base, int64_t off) {
  return *reinterpret_cast<const T*>(base + off);
}

// Accumulator types, as on the CPU: double for floating sums, int64 otherwise.
template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// Block-wide sum and max of one double per thread (blockDim.x a power of two, at most 256; every thread gets the
// result), shared by the row kernels of reduce.cu and nn_fused.cu.
inline constexpr int kRowBlock = 256;

__device__ inline double block_sum(double v, double* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) scratch[threadIdx.x] += scratch[threadIdx.x + w];
    __syncthreads();
  }
  const double r = scratch[0];
  __syncthreads();
  return r;
}

__device__ inline double block_max(double v, double* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) scratch[threadIdx.x] = fmax(scratch[threadIdx.x], scratch[threadIdx.x + w]);
    __syncthreads();
  }
  const double r = scratch[0];
  __syncthreads();
  return r;
}

}  // namespace tg::cuda
