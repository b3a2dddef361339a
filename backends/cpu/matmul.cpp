// Batched GEMM over [B, M, K] @ [B, K, N]: a large product is split over the threads (gemm.h), many small
// products run one per thread.
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  if (out.numel() == 0) return;
  dispatch(a.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("matmul: bool tensors are not supported");
    else {
      const T* pa = static_cast<const T*>(a.data_ptr());
      const T* pb = static_cast<const T*>(b.data_ptr());
      T* pc = static_cast<T*>(out.data_ptr());
      auto one = [&](int64_t i) {
        Mat<T> ma{pa + i * a.stride(0), M, K, a.stride(1), a.stride(2)};
        Mat<T> mb{pb + i * b.stride(0), K, N, b.stride(1), b.stride(2)};
        gemm_threaded(ma, mb, pc + i * M * N, N);
      };
      // Many small products: one per thread, when there is enough work in all to pay for waking the threads.
      // Otherwise one at a time, each split over the threads.
      const bool small = M * N * K < kGemmParallelWork * 4;
      if (B > 1 && small && B * M * N * K >= kGemmParallelWork && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < B; ++i) one(i);
      } else {
        for (int64_t i = 0; i < B; ++i) one(i);
      }
    }
  });
}

}  // namespace tg::cpu
