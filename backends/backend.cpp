// The device -> backend registry. The CPU backend registers itself; CUDA does when it is built.
#include "backends/backend.h"

namespace tg {

namespace {
Backend* registry[2] = {nullptr, nullptr};
}

void register_backend(DeviceType type, Backend* b) { registry[static_cast<int>(type)] = b; }

Backend& cpu_backend();  // backends/cpu/cpu_backend.cpp

Backend& backend_for(Device d) {
  if (d.is_cpu()) return cpu_backend();
  Backend* b = registry[static_cast<int>(d.type)];
  TG_CHECK(b != nullptr, "device {}: tapegrad was built without this backend", d.str());
  return *b;
}

}  // namespace tg
