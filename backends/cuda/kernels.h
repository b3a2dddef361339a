// The CUDA kernels' launch functions, as the host side of the backend (cuda_backend*.cpp) calls them: device
// pointers, byte strides, op codes (backends/op_codes.h) and one template parameter per element type, each
// explicitly instantiated in its .cu file. Nothing here includes core/: nvcc cannot parse the fmt headers it uses,
// so the .cu files see plain data only and every argument check happens on the host before a launch.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/op_codes.h"

#ifdef __CUDACC__
#define TG_HD __host__ __device__
#else
#define TG_HD
#endif

namespace tg::cuda {

inline constexpr int kMaxDims = 16;

// N operands walked together over one shape: the sizes (size-1 dims dropped, adjacent dims coalesced, innermost
// last) and each operand's strides in bytes. Built on the host by make_indexer (cuda_backend.h).
template <int N> struct Indexer {
  int ndim = 0;
  int64_t numel = 1;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims][N] = {};

  // The byte offset of every operand at row-major position `linear`.
  TG_HD void offsets(int64_t linear, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[d][k];
    }
  }
};

// ---- elementwise (elementwise.cu). Operand 0 of each indexer is the output.
template <class T> void launch_unary(UnaryOp op, const Indexer<2>& ix, char* out, const char* x, double p0,
                                     double p1, cudaStream_t s);
template <class T> void launch_logical_not(const Indexer<2>& ix, char* out, const char* x, cudaStream_t s);
// b_scalar is used when b is null (binary_scalar).
template <class T> void launch_binary(BinaryOp op, const Indexer<3>& ix, char* out, const char* a, const char* b,
                                      T b_scalar, cudaStream_t s);
template <class T> void launch_where(const Indexer<4>& ix, char* out, const char* cond, const char* a, const char* b,
                                     cudaStream_t s);
template <class TO, class TI> void launch_convert(const Indexer<2>& ix, char* out, const char* in, cudaStream_t s);
template <class T> void launch_fill(const Indexer<1>& ix, char* out, T value, cudaStream_t s);

// ---- reductions and row kernels (reduce.cu)
// For each output position (outer: operand 0 = out, operand 1 = x at the first reduced element), reduce over the
// region given by rsizes/rstrides (bytes, row-major) of rcount elements. ArgMax/ArgMin write int64.
struct ReduceGeometry {
  Indexer<2> outer;
  int rdims = 0;
  int64_t rcount = 1;
  int64_t rsizes[kMaxDims] = {};
  int64_t rstrides[kMaxDims] = {};
};
template <class T> void launch_reduce(ReduceOp op, const ReduceGeometry& g, char* out, const char* x, cudaStream_t s);
// Rows along one dim: `rows` walks the row starts (operand order as in each signature), n elements per row, each
// operand's stride along the row in bytes.
template <class T> void launch_cumsum(const Indexer<2>& rows, int64_t n, int64_t os, int64_t xs, bool reverse,
                                      char* out, const char* x, cudaStream_t s);
template <class T> void launch_softmax(const Indexer<2>& rows, int64_t n, int64_t os, int64_t xs, bool log, char* out,
                                       const char* x, cudaStream_t s);
template <class T> void launch_softmax_backward(const Indexer<3>& rows, int64_t n, int64_t gxs, int64_t ys,
                                                int64_t gys, bool log, char* gx, const char* y, const char* gy,
                                                cudaStream_t s);

// ---- index kernels (index.cu). ix operands: gather (out, x with dim's stride 0, index); scatter (out with dim's
// stride 0, index, src). `step` is the stride along dim, in elements.
template <class T> void launch_gather(const Indexer<3>& ix, int64_t step, char* out, const char* x, const char* index,
                                      cudaStream_t s);
template <class T> void launch_scatter_add(const Indexer<3>& ix, int64_t step, char* out, const char* index,
                                           const char* src, cudaStream_t s);
template <class T> void launch_triangle(int64_t batch, int64_t rows, int64_t cols, int64_t k, bool upper, T* out,
                                        const T* x, cudaStream_t s);
// A plain [B] x [M, K] @ [K, N] product for the types cuBLAS lacks (int64); element strides.
template <class T> void launch_naive_matmul(int64_t B, int64_t M, int64_t N, int64_t K, const T* a, int64_t as0,
                                            int64_t as1, int64_t as2, const T* b, int64_t bs0, int64_t bs1,
                                            int64_t bs2, T* out, cudaStream_t s);

// ---- fused nn kernels (nn_fused.cu), the CUDA side of backends/cpu/nn_fused.cpp; contiguous rows.
// Writes loss and lse per row; the host has checked every target.
template <class T> void launch_cross_entropy(int64_t R, int64_t C, const T* logits, const int64_t* target,
                                             int64_t ignore_index, double smoothing, T* loss, T* lse, cudaStream_t s);
template <class T> void launch_cross_entropy_backward(int64_t R, int64_t C, const T* logits, const int64_t* target,
                                                      const T* lse, const T* grad_loss, int64_t grad_loss_stride,
                                                      int64_t ignore_index, double smoothing, T* grad,
                                                      cudaStream_t s);
template <class T> void launch_bias_rows(int64_t M, int64_t N, const T* bias, T* out, cudaStream_t s);
template <class T> void launch_norm(int64_t R, int64_t D, const T* x, const T* w, const T* b, double eps, bool center,
                                    T* out, T* mean, T* rstd, cudaStream_t s);
template <class T> void launch_norm_backward(int64_t R, int64_t D, const T* grad_out, const T* x, const T* w,
                                             const T* mean, const T* rstd, bool center, T* grad_x, T* grad_w,
                                             T* grad_b, cudaStream_t s);

// ---- fused optimizer update (optim_update.cu): contiguous p, g and states.
template <class T> void launch_optim_update(const OptimUpdate& u, int64_t n, T* p, const T* g, T* s0, T* s1, T* s2,
                                            cudaStream_t s);

}  // namespace tg::cuda
