// Storage: a refcounted, device-owned buffer shared by a tensor and all of its views.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/device.h"

namespace tg {

struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  std::function<void(void*)> deleter;  // empty for borrowed memory (from_blob without a deleter)
  // Bumped by every in-place write; autograd compares it with the value seen when a tensor was saved.
  uint64_t version = 0;

  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  // Uninitialised memory from the device's allocator.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
};

}  // namespace tg
