// Where a tensor's storage lives: the CPU or one CUDA device.
#pragma once
#include <string>

#include "core/error.h"

namespace tg {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

inline const Device kCPU = Device::cpu();

}  // namespace tg

template <> struct fmt::formatter<tg::Device> : fmt::formatter<std::string_view> {
  auto format(const tg::Device& d, format_context& ctx) const { return fmt::formatter<std::string_view>::format(d.str(), ctx); }
};
