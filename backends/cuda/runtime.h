// The CUDA state the backend shares: tapegrad's stream, the cuBLAS handle bound to it, and a pinned host staging
// buffer for transfers. Created on first use; device 0 only.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace tg::cuda {

cudaStream_t stream();
cublasHandle_t cublas();
// A pinned host buffer of at least nbytes, this thread's own, reused across calls (valid until the next call).
void* pinned_staging(size_t nbytes);
// Throws a tg::Error naming op when no usable device is present.
void require_device(const char* op);

}  // namespace tg::cuda
