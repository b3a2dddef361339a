// Which backend computes for a device: the CPU backend always; the CUDA backend when tapegrad was built with it.
#include "backends/backend.h"

namespace tg {

Backend& cpu_backend();  // backends/cpu/cpu_backend.cpp
#ifdef TG_HAVE_CUDA
Backend& cuda_backend();  // backends/cuda/cuda_backend.cpp
#endif

Backend& backend_for(Device d) {
  if (d.is_cpu()) return cpu_backend();
#ifdef TG_HAVE_CUDA
  TG_CHECK(d.index == 0, "device {}: only cuda:0 is supported", d.str());
  return cuda_backend();
#else
  TG_ERROR("device {}: tapegrad was built without the CUDA backend (configure with -DTG_CUDA=ON where nvcc is found)",
           d.str());
#endif
}

}  // namespace tg
