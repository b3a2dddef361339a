// The caching device allocator (see allocator.h).
#include "backends/cuda/allocator.h"

#include <algorithm>

#include "backends/cuda/check.h"

namespace tg::cuda {

size_t CachingAllocator::size_class(size_t nbytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{2} << 20, kSmallLimit = size_t{1} << 20;
  if (nbytes <= kSmallLimit) return std::max(kSmall, (nbytes + kSmall - 1) / kSmall * kSmall);
  return (nbytes + kLarge - 1) / kLarge * kLarge;
}

void* CachingAllocator::allocate(size_t nbytes) {
  const size_t cls = size_class(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  void* p = nullptr;
  auto it = free_.find(cls);
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    cached_bytes_ -= cls;
    ++stats_.cache_hits;
  } else {
    cudaError_t err = cudaMalloc(&p, cls);
    if (err == cudaErrorMemoryAllocation && cached_bytes_ > 0) {  // out of memory: give the cache back, try again
      (void)cudaGetLastError();
      for (auto& [c, blocks] : free_)
        for (void* b : blocks) cudaFree(b);
      free_.clear();
      stats_.reserved_bytes -= cached_bytes_;
      cached_bytes_ = 0;
      err = cudaMalloc(&p, cls);
    }
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      TG_ERROR("cuda: out of memory allocating {} bytes ({} bytes held by tensors)", nbytes, stats_.allocated_bytes);
    }
    TG_CUDA_CHECK(err, "cuda allocate");
    ++stats_.device_allocs;
    stats_.reserved_bytes += cls;
  }
  live_[p] = cls;
  stats_.allocated_bytes += cls;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  return p;
}

void CachingAllocator::deallocate(void* p) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;  // not ours: never happens for storage made by the backend
  const size_t cls = it->second;
  live_.erase(it);
  stats_.allocated_bytes -= cls;
  free_[cls].push_back(p);
  cached_bytes_ += cls;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  cudaDeviceSynchronize();  // a cached block may still be read by queued work
  for (auto& [cls, blocks] : free_)
    for (void* b : blocks) cudaFree(b);
  free_.clear();
  stats_.reserved_bytes -= cached_bytes_;
  cached_bytes_ = 0;
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

CachingAllocator& allocator() {
  static auto* a = new CachingAllocator;  // never destroyed: tensors freed during static destruction still find it
  return *a;
}

}  // namespace tg::cuda
