// The caching device allocator: a block freed by a tensor goes back to a free list for its size class instead of
// to the driver, so a training loop stops calling cudaMalloc after its first step. Size classes: multiples of
// 512 bytes up to 1 MiB, then multiples of 2 MiB. All work runs on tapegrad's one stream, in order, so a block
// freed on the host can be handed out again at once: any kernel that still reads it was queued before any kernel
// that writes its new owner.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "backends/cuda.h"

namespace tg::cuda {

class CachingAllocator {
 public:
  void* allocate(size_t nbytes);
  void deallocate(void* p);
  void empty_cache();
  MemoryStats stats() const;
  static size_t size_class(size_t nbytes);

 private:
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;   // size class -> cached blocks
  std::unordered_map<void*, size_t> live_;      // block -> its size class
  MemoryStats stats_;
  size_t cached_bytes_ = 0;
};

CachingAllocator& allocator();

}  // namespace tg::cuda
