// tg::cuda's public functions (backends/cuda.h) and the shared CUDA state (runtime.h).
#include "backends/cuda/runtime.h"

#include <algorithm>
#include <string>

#include "backends/cuda.h"
#include "backends/cuda/allocator.h"
#include "backends/cuda/check.h"

namespace tg::cuda {

namespace {

struct Probe {
  int count = 0;
  std::string reason;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    const cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      r.count = 0;
      r.reason = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    } else if (r.count == 0) {
      r.reason = "no CUDA device is visible";
    }
    return r;
  }();
  return p;
}

bool g_allow_tf32 = false;

}  // namespace

bool is_built() { return true; }
bool is_available() { return probe().count > 0; }
int device_count() { return probe().count; }
std::string unavailable_reason() { return probe().reason; }

void require_device(const char* op) {
  TG_CHECK(is_available(), "{}: {}", op, probe().reason);
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    require_device("cuda");
    cudaStream_t st;
    TG_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cuda stream");
    return st;
  }();
  return s;
}

cublasHandle_t cublas() {
  static cublasHandle_t h = [] {
    cublasHandle_t handle;
    TG_CUBLAS_CHECK(cublasCreate(&handle), "cublas init");
    TG_CUBLAS_CHECK(cublasSetStream(handle, stream()), "cublas init");
    return handle;
  }();
  TG_CUBLAS_CHECK(cublasSetMathMode(h, g_allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "cublas");
  return h;
}

// One buffer per thread, so a background loader's transfers never share a buffer with the training thread's.
void* pinned_staging(size_t nbytes) {
  struct Buffer {
    void* p = nullptr;
    size_t cap = 0;
    ~Buffer() {
      if (p) cudaFreeHost(p);
    }
  };
  thread_local Buffer b;
  if (nbytes > b.cap) {
    if (b.p) TG_CUDA_CHECK(cudaFreeHost(b.p), "pinned staging");
    b.p = nullptr;
    const size_t cap = std::max(nbytes, size_t{1} << 20);
    TG_CUDA_CHECK(cudaHostAlloc(&b.p, cap, cudaHostAllocDefault), "pinned staging");
    b.cap = cap;
  }
  return b.p;
}

void synchronize() {
  if (!is_available()) return;
  TG_CUDA_CHECK(cudaStreamSynchronize(stream()), "cuda synchronize");
}

MemoryStats memory_stats() { return allocator().stats(); }
void empty_cache() {
  if (is_available()) allocator().empty_cache();
}
void set_allow_tf32(bool on) { g_allow_tf32 = on; }
bool allow_tf32() { return g_allow_tf32; }

}  // namespace tg::cuda
