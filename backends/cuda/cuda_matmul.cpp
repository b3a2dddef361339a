// The CUDA backend's GEMMs through cuBLAS: batched matmul (strided-batched, any operand that is row- or
// column-major in its last two dims used in place, anything else made dense first) and linear (bias rows, then a
// GEMM accumulating onto them). cuBLAS is column-major: a row-major C = A B is computed as the column-major
// C^T = B^T A^T, which reads the same bytes. Integer products use a plain kernel.
#include "backends/cuda/cuda_backend.h"
#include "core/ops.h"

namespace tg::cuda {

namespace {

// How cuBLAS can read a [B, R, C] operand without copying it: the transpose flag for the column-major view of
// its row-major matrix, and the leading dimension.
struct Layout {
  Tensor t;  // the operand itself, or a dense copy
  cublasOperation_t op;
  int64_t ld;
};

Layout layout_of(const Tensor& x) {
  const int64_t R = x.size(1), C = x.size(2);
  if (x.stride(2) == 1 && x.stride(1) >= std::max<int64_t>(1, C)) return {x, CUBLAS_OP_N, x.stride(1)};
  if (x.stride(1) == 1 && x.stride(2) >= std::max<int64_t>(1, R)) return {x, CUBLAS_OP_T, x.stride(2)};
  Tensor d = x.contiguous();
  return {d, CUBLAS_OP_N, std::max<int64_t>(1, C)};
}

template <class T> void gemm_strided_batched(cublasOperation_t opa, cublasOperation_t opb, int64_t m, int64_t n,
                                             int64_t k, const T* a, int64_t lda, int64_t sa, const T* b, int64_t ldb,
                                             int64_t sb, T beta, T* c, int64_t ldc, int64_t sc, int64_t batch) {
  const T alpha = 1;
  if constexpr (std::is_same_v<T, float>)
    TG_CUBLAS_CHECK(cublasSgemmStridedBatched(cublas(), opa, opb, m, n, k, &alpha, a, lda, sa, b, ldb, sb, &beta, c,
                                              ldc, sc, batch), "matmul");
  else
    TG_CUBLAS_CHECK(cublasDgemmStridedBatched(cublas(), opa, opb, m, n, k, &alpha, a, lda, sa, b, ldb, sb, &beta, c,
                                              ldc, sc, batch), "matmul");
}

}  // namespace

void CudaBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  if (out.numel() == 0) return;
  if (K == 0) {
    fill(out, 0);
    return;
  }
  dispatch(a.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("matmul: bool tensors are not supported");
    else if constexpr (std::is_same_v<T, int64_t>) {
      launch_naive_matmul<T>(B, M, N, K, device_data<T>(a), a.stride(0), a.stride(1), a.stride(2), device_data<T>(b),
                             b.stride(0), b.stride(1), b.stride(2), device_data<T>(out), stream());
      TG_CUDA_CHECK_LAUNCH("matmul");
    } else {
      const Layout la = layout_of(a), lb = layout_of(b);
      // column-major: out^T [N, M] = b^T [N, K] @ a^T [K, M]
      gemm_strided_batched<T>(lb.op, la.op, N, M, K, device_data<T>(lb.t), lb.ld, lb.t.stride(0), device_data<T>(la.t),
                              la.ld, la.t.stride(0), T(0), device_data<T>(out), N, M * N, B);
    }
  });
}

void CudaBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  if (out.numel() == 0) return;
  dispatch_floating(x.dtype(), "linear", [&]<class T>() {
    const bool has_bias = bias.defined();
    if (has_bias) {
      launch_bias_rows<T>(M, N, device_data<T>(bias), device_data<T>(out), stream());
      TG_CUDA_CHECK_LAUNCH("linear");
    }
    if (K == 0) {
      if (!has_bias) fill(out, 0);
      return;
    }
    // column-major: out^T [N, M] = w [N, K] (stored as w^T, so transposed) @ x^T [K, M]
    gemm_strided_batched<T>(CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, device_data<T>(w), K, 0, device_data<T>(x), K, 0,
                            has_bias ? T(1) : T(0), device_data<T>(out), N, 0, 1);
  });
}

}  // namespace tg::cuda
