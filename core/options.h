// TensorOptions: dtype, device and requires_grad for factories, as in torch::TensorOptions.
#pragma once
#include "core/device.h"
#include "core/dtype.h"

namespace tg {

struct TensorOptions {
  DType dtype_ = kFloat32;
  Device device_ = Device::cpu();
  bool requires_grad_ = false;

  TensorOptions() = default;
  TensorOptions(DType t) : dtype_(t) {}    // NOLINT: implicit, so zeros({2}, kFloat64) reads naturally
  TensorOptions(Device d) : device_(d) {}  // NOLINT
  TensorOptions dtype(DType t) const { auto o = *this; o.dtype_ = t; return o; }
  TensorOptions device(Device d) const { auto o = *this; o.device_ = d; return o; }
  TensorOptions requires_grad(bool r = true) const { auto o = *this; o.requires_grad_ = r; return o; }
};

inline TensorOptions dtype(DType t) { return TensorOptions(t); }

}  // namespace tg
