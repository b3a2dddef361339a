// tg::cuda's answers in a build without the CUDA backend: nothing is available and there is nothing to manage.
#ifndef TG_HAVE_CUDA
#include "backends/cuda.h"

namespace tg::cuda {

bool is_built() { return false; }
bool is_available() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return "tapegrad was built without the CUDA backend (configure with -DTG_CUDA=ON)"; }
void synchronize() {}
MemoryStats memory_stats() { return {}; }
void empty_cache() {}
void set_allow_tf32(bool) {}
bool allow_tf32() { return false; }

}  // namespace tg::cuda
#endif
