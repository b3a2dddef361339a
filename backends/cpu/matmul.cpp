// Batched GEMM on raw strided buffers. Float types go to OpenBLAS's cblas_?gemm when built with TG_BLAS (the
// default: about 1.6x Eigen 3.4 at 1024^2 on this hardware), else to Eigen through Maps with strides; a
// transposed view needs no copy either way. Many small matrices are spread over threads one GEMM each.
#include <Eigen/Core>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

#ifdef TG_USE_CBLAS
#include <cblas.h>
#endif

namespace tg::cpu {

namespace {

// A matrix operand: base pointer and (row, col) strides in elements.
template <class T> struct Mat {
  const T* p;
  int64_t rows, cols, rs, cs;
};

template <class T> void gemm_eigen(const Mat<T>& a, const Mat<T>& b, T* c, int64_t ldc) {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using S = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  Eigen::Map<const M, 0, S> A(a.p, a.rows, a.cols, S(a.rs, a.cs));
  Eigen::Map<const M, 0, S> B(b.p, b.rows, b.cols, S(b.rs, b.cs));
  Eigen::Map<M, 0, Eigen::OuterStride<>> C(c, a.rows, b.cols, Eigen::OuterStride<>(ldc));
  C.noalias() = A * B;
}

#ifdef TG_USE_CBLAS
// BLAS needs one unit stride per matrix: row-major (cs == 1) or transposed (rs == 1).
template <class T> bool blas_layout(const Mat<T>& m, CBLAS_TRANSPOSE& tr, int64_t& ld) {
  const int64_t kFree = -1;  // the stride of a size-1 dim can be anything
  int64_t rs = m.rows == 1 ? kFree : m.rs, cs = m.cols == 1 ? kFree : m.cs;
  int64_t rows = std::max<int64_t>(m.rows, 1), cols = std::max<int64_t>(m.cols, 1);
  if ((cs == 1 || cs == kFree) && (rs == kFree || rs >= cols)) {
    tr = CblasNoTrans;
    ld = rs == kFree ? cols : rs;
    return true;
  }
  if ((rs == 1 || rs == kFree) && (cs == kFree || cs >= rows)) {
    tr = CblasTrans;
    ld = cs == kFree ? rows : cs;
    return true;
  }
  return false;
}

template <class T> bool gemm_blas(const Mat<T>& a, const Mat<T>& b, T* c, int64_t ldc) {
  CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb;
  if (!blas_layout(a, ta, lda) || !blas_layout(b, tb, ldb)) return false;
  const int M = static_cast<int>(a.rows), N = static_cast<int>(b.cols), K = static_cast<int>(a.cols);
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, a.p, static_cast<int>(lda), b.p, static_cast<int>(ldb), 0.0f, c,
                static_cast<int>(ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, 1.0, a.p, static_cast<int>(lda), b.p, static_cast<int>(ldb), 0.0, c,
                static_cast<int>(ldc));
  return true;
}
#endif

template <class T> void gemm(const Mat<T>& a, const Mat<T>& b, T* c, int64_t ldc, bool allow_blas) {
  if (a.cols == 0) {  // empty inner dim: the product is zeros
    for (int64_t i = 0; i < a.rows; ++i)
      for (int64_t j = 0; j < b.cols; ++j) c[i * ldc + j] = T(0);
    return;
  }
#ifdef TG_USE_CBLAS
  if constexpr (std::is_floating_point_v<T>)
    if (allow_blas && gemm_blas(a, b, c, ldc)) return;
#endif
  gemm_eigen(a, b, c, ldc);
}

}  // namespace

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  if (out.numel() == 0) return;
  dispatch(a.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("matmul: bool tensors are not supported");
    else {
      const T* pa = static_cast<const T*>(a.data_ptr());
      const T* pb = static_cast<const T*>(b.data_ptr());
      T* pc = static_cast<T*>(out.data_ptr());
      auto one = [&](int64_t i, bool allow_blas) {
        Mat<T> ma{pa + i * a.stride(0), M, K, a.stride(1), a.stride(2)};
        Mat<T> mb{pb + i * b.stride(0), K, N, b.stride(1), b.stride(2)};
        gemm(ma, mb, pc + i * M * N, N, allow_blas);
      };
      // Small matrices: one GEMM per thread (Eigen, single-threaded inside a parallel region). Large: one at a
      // time, each threaded inside the library.
      bool small = M * N * K < 64 * 64 * 64;
      if (B > 1 && small && omp_get_max_threads() > 1 && B * M * N * K >= kParallelGrain * 8) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < B; ++i) one(i, false);
      } else {
        for (int64_t i = 0; i < B; ++i) one(i, true);
      }
    }
  });
}

}  // namespace tg::cpu
