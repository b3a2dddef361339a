// The GEMM every CPU kernel shares: c (row stride ldc) = a @ b (+ c when accumulating) on strided operands.
// Float types go to OpenBLAS's cblas_?gemm when built with TG_BLAS (the default: about 1.6x Eigen 3.4 at 1024^2 on
// this hardware), else to Eigen through Maps with strides; a transposed view needs no copy either way.
#pragma once
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "backends/cpu/tiled_gemm.h"

#ifdef TG_USE_CBLAS
#include <cblas.h>
#endif

namespace tg::cpu {

// A matrix operand: base pointer and (row, col) strides in elements.
template <class T> struct Mat {
  const T* p;
  int64_t rows, cols, rs, cs;
};

template <class T> void gemm_eigen(const Mat<T>& a, const Mat<T>& b, T* c, int64_t ldc, bool accumulate) {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using S = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  Eigen::Map<const M, 0, S> A(a.p, a.rows, a.cols, S(a.rs, a.cs));
  Eigen::Map<const M, 0, S> B(b.p, b.rows, b.cols, S(b.rs, b.cs));
  Eigen::Map<M, 0, Eigen::OuterStride<>> C(c, a.rows, b.cols, Eigen::OuterStride<>(ldc));
  if (accumulate) C.noalias() += A * B;
  else C.noalias() = A * B;
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

template <class T> bool gemm_blas(const Mat<T>& a, const Mat<T>& b, T* c, int64_t ldc, bool accumulate) {
  CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb;
  if (!blas_layout(a, ta, lda) || !blas_layout(b, tb, ldb)) return false;
  const int M = static_cast<int>(a.rows), N = static_cast<int>(b.cols), K = static_cast<int>(a.cols);
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, a.p, static_cast<int>(lda), b.p, static_cast<int>(ldb), accumulate ? 1.0f : 0.0f, c,
                static_cast<int>(ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, 1.0, a.p, static_cast<int>(lda), b.p, static_cast<int>(ldb), accumulate ? 1.0 : 0.0, c,
                static_cast<int>(ldc));
  return true;
}
#endif

template <class T> void gemm(const Mat<T>& a, const Mat<T>& b, T* c, int64_t ldc, bool accumulate = false) {
  if (a.cols == 0) {  // empty inner dim: the product is zeros
    if (!accumulate)
      for (int64_t i = 0; i < a.rows; ++i)
        for (int64_t j = 0; j < b.cols; ++j) c[i * ldc + j] = T(0);
    return;
  }
  if constexpr (tiled::kPreferred && std::is_floating_point_v<T>) {
    // Small and mid-size products with a row-major B: the register-tiled kernel (tiled_gemm.h) beats the library
    // GEMM's repacking on AVX-512 while B fits in L2 (1 MiB; it streams B once per row tile of C): sgemm-512 went
    // from 0.6x to 1.9x OpenBLAS here.
    const bool b_rows = b.cs == 1 || b.cols == 1;
    const bool a_rows = a.cs == 1 || a.cols == 1, a_cols = a.rs == 1 || a.rows == 1;
    if (b_rows && (a_rows || a_cols) && a.cols * b.cols * int64_t(sizeof(T)) <= (1 << 20)) {
      const int64_t ldb = b.rows == 1 ? b.cols : b.rs;
      if (a_rows) tiled::gemm<false, T>(a.rows, b.cols, a.cols, a.p, a.rows == 1 ? a.cols : a.rs, b.p, ldb, c, ldc, accumulate);
      else tiled::gemm<true, T>(a.rows, b.cols, a.cols, a.p, a.cols == 1 ? a.rows : a.cs, b.p, ldb, c, ldc, accumulate);
      return;
    }
  }
#ifdef TG_USE_CBLAS
  if constexpr (std::is_floating_point_v<T>)
    if (gemm_blas(a, b, c, ldc, accumulate)) return;
#endif
  gemm_eigen(a, b, c, ldc, accumulate);
}

// Below this many multiply-adds a GEMM runs on one thread.
inline constexpr int64_t kGemmParallelWork = 48 * 48 * 48;

// One GEMM, split over the OpenMP threads by blocks of rows (or of columns, when there are few rows), each block a
// single-threaded library call. The BLAS's own thread pool stays off (parallel.cpp): its spinning threads and
// OpenMP's would fight over the cores, which slowed a small MLP step 20x on 2 cores.
template <class T> void gemm_threaded(const Mat<T>& a, const Mat<T>& b, T* c, int64_t ldc, bool accumulate = false) {
  const int64_t M = a.rows, N = b.cols, K = a.cols;
  const int threads = omp_get_max_threads();
  if (threads == 1 || omp_in_parallel() || M * N * K < kGemmParallelWork) return gemm(a, b, c, ldc, accumulate);
  const bool by_rows = M >= N;
  const int64_t extent = by_rows ? M : N, align = 16;
#pragma omp parallel
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t blocks = (extent + align - 1) / align;
    int64_t b0 = blocks * t / nt * align, b1 = std::min(extent, blocks * (t + 1) / nt * align);
    if (b0 < b1) {
      if (by_rows) gemm(Mat<T>{a.p + b0 * a.rs, b1 - b0, K, a.rs, a.cs}, b, c + b0 * ldc, ldc, accumulate);
      else gemm(a, Mat<T>{b.p + b0 * b.cs, K, b1 - b0, b.rs, b.cs}, c + b0, ldc, accumulate);
    }
  }
}

}  // namespace tg::cpu
