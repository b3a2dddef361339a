// Turning CUDA and cuBLAS failures into tg::Error: the op that failed and the library's own error string, never a
// silent wrong result. Host code only.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

// TG_CUDA_CHECK(cudaMemcpy(...), "to") throws "to: CUDA error: <string> (<call>)". The sticky error state is
// cleared first, so one failure does not poison every later call.
#define TG_CUDA_CHECK(expr, op)                                                                                  \
  do {                                                                                                           \
    const cudaError_t tg_err_ = (expr);                                                                          \
    if (tg_err_ != cudaSuccess) [[unlikely]] {                                                                   \
      (void)cudaGetLastError();                                                                                  \
      TG_ERROR("{}: CUDA error: {} ({})", op, cudaGetErrorString(tg_err_), #expr);                               \
    }                                                                                                            \
  } while (0)

// After a kernel launch: a bad configuration or an earlier asynchronous fault surfaces here.
#define TG_CUDA_CHECK_LAUNCH(op) TG_CUDA_CHECK(cudaGetLastError(), op)

#define TG_CUBLAS_CHECK(expr, op)                                                                                \
  do {                                                                                                           \
    const cublasStatus_t tg_st_ = (expr);                                                                        \
    if (tg_st_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                                                            \
      TG_ERROR("{}: cuBLAS error: {} ({})", op, cublasGetStatusString(tg_st_), #expr);                           \
  } while (0)
