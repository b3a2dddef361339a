// CPU memory (64-byte aligned, for vector loads) and the backend instance.
#include "backends/cpu/cpu_backend.h"

#include <cstdlib>
#include <new>

namespace tg {
namespace cpu {

void* CpuBackend::allocate(size_t nbytes) {
  size_t rounded = (nbytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw Error(fmt::format("cpu: out of memory allocating {} bytes", nbytes));
  return p;
}

void CpuBackend::deallocate(void* p) { std::free(p); }

}  // namespace cpu

Backend& cpu_backend() {
  static cpu::CpuBackend b;
  return b;
}

}  // namespace tg
