// The CUDA runtime as users see it, in every build: whether a GPU is usable, the caching allocator's statistics
// and cache, synchronisation, and the TF32 switch for float32 GEMMs. In a build without the CUDA backend every
// query answers "no GPU" and the actions are no-ops, so code written for both runs unchanged on a CPU-only build.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace tg::cuda {

// True when tapegrad was built with the CUDA backend.
bool is_built();
// True when the backend is built and at least one device can be used (driver present, device visible).
bool is_available();
int device_count();
// Why is_available() is false ("built without CUDA", the driver's error string, ...); empty when it is true.
std::string unavailable_reason();

// Waits for all work queued on tapegrad's stream.
void synchronize();

// The caching allocator: device memory is taken from the driver once per block and reused by size class.
struct MemoryStats {
  size_t allocated_bytes = 0;       // held by live tensors (rounded to the size class)
  size_t reserved_bytes = 0;        // allocated plus cached for reuse
  size_t peak_allocated_bytes = 0;
  int64_t device_allocs = 0;        // cudaMalloc calls
  int64_t cache_hits = 0;           // allocations served from the cache
};
MemoryStats memory_stats();
// Returns every cached (unused) block to the driver.
void empty_cache();

// float32 GEMMs may use TF32 tensor cores (10-bit mantissa inputs, float32 accumulation). Off by default, as in
// PyTorch's torch.backends.cuda.matmul.allow_tf32.
void set_allow_tf32(bool on);
bool allow_tf32();

}  // namespace tg::cuda
