// Storage allocation and release through the owning device's backend.
#include "core/storage.h"

#include "backends/backend.h"

namespace tg {

Storage::~Storage() {
  if (deleter && data) deleter(data);
}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  auto s = std::make_shared<Storage>();
  Backend& be = backend_for(device);
  s->data = nbytes ? be.allocate(nbytes) : nullptr;
  s->nbytes = nbytes;
  s->device = device;
  s->deleter = [&be](void* p) { be.deallocate(p); };
  return s;
}

}  // namespace tg
