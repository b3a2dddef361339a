// Elementwise unary kernels: one loop (loops.h map1), the op chosen once per call by a lambda.
#include <cmath>
#include <algorithm>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

template <class T> T sigmoid_of(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

// erf for GELU: float takes Eigen's rational approximation (generic_fast_erf_float, a couple of ulp on [-4, 4],
// +-1 outside), which the compiler vectorises, where a call to erff per element cost GPT training 15% of its time;
// double keeps std::erf.
template <class T> T gelu_erf(T v) {
  if constexpr (std::is_same_v<T, float>) {
    const float x = std::max(-4.f, std::min(4.f, v)), x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return x * p / q;
  } else {
    return std::erf(v);
  }
}

template <class T> void run(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  auto go = [&](auto f) { map1<T, T>(x, x.strides(), out, f); };
  const T lo = scalar_cast<T>(p0), hi = scalar_cast<T>(p1);
  switch (op) {
    case UnaryOp::Neg: return go([](T v) { return static_cast<T>(-v); });
    case UnaryOp::Abs: return go([](T v) { return v < 0 ? static_cast<T>(-v) : v; });
    case UnaryOp::Sign: return go([](T v) { return static_cast<T>((T(0) < v) - (v < T(0))); });
    case UnaryOp::Clamp: return go([=](T v) { return v < lo ? lo : (v > hi ? hi : v); });
    case UnaryOp::ClampMask: return go([=](T v) { return static_cast<T>(v >= lo && v <= hi); });
    default: break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    constexpr T kSqrt1_2 = T(0.70710678118654752440);
    constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
    constexpr T kSqrt2OverPi = T(0.79788456080286535588);
    constexpr T kC = T(0.044715);
    switch (op) {
      case UnaryOp::Exp: return go([](T v) { return std::exp(v); });
      case UnaryOp::Log: return go([](T v) { return std::log(v); });
      case UnaryOp::Sqrt: return go([](T v) { return std::sqrt(v); });
      case UnaryOp::Rsqrt: return go([](T v) { return T(1) / std::sqrt(v); });
      case UnaryOp::Sin: return go([](T v) { return std::sin(v); });
      case UnaryOp::Cos: return go([](T v) { return std::cos(v); });
      case UnaryOp::Tanh: return go([](T v) { return std::tanh(v); });
      case UnaryOp::Sigmoid: return go([](T v) { return sigmoid_of(v); });
      case UnaryOp::Relu: return go([](T v) { return v < T(0) ? T(0) : v; });
      case UnaryOp::GeluErf: return go([=](T v) { return T(0.5) * v * (T(1) + gelu_erf(v * kSqrt1_2)); });
      case UnaryOp::GeluTanh:
        return go([=](T v) { return T(0.5) * v * (T(1) + std::tanh(kSqrt2OverPi * (v + kC * v * v * v))); });
      case UnaryOp::Silu: return go([](T v) { return v * sigmoid_of(v); });
      case UnaryOp::Softplus:
        return go([=](T v) { return v * lo > hi ? v : std::log1p(std::exp(v * lo)) / lo; });
      case UnaryOp::PowScalar: return go([=](T v) { return std::pow(v, lo); });
      case UnaryOp::GeluErfGrad:
        return go([=](T v) { return T(0.5) * (T(1) + gelu_erf(v * kSqrt1_2)) + v * kInvSqrt2Pi * std::exp(T(-0.5) * v * v); });
      case UnaryOp::GeluTanhGrad:
        return go([=](T v) {
          T t = std::tanh(kSqrt2OverPi * (v + kC * v * v * v));
          return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * kSqrt2OverPi * (T(1) + T(3) * kC * v * v);
        });
      case UnaryOp::SiluGrad:
        return go([](T v) {
          T s = sigmoid_of(v);
          return s * (T(1) + v * (T(1) - s));
        });
      case UnaryOp::SoftplusGrad: return go([=](T v) { return v * lo > hi ? T(1) : sigmoid_of(v * lo); });
      default: break;
    }
  }
  TG_ERROR("cpu unary: op {} not supported for dtype {}", static_cast<int>(op), dtype_name(x.dtype()));
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  if (op == UnaryOp::LogicalNot) {
    dispatch(x.dtype(), [&]<class T>() { map1<bool, T>(x, x.strides(), out, [](T v) { return v == T(0); }); });
    return;
  }
  dispatch(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("cpu unary: bool tensors are not supported");
    else run<T>(op, x, out, p0, p1);
  });
}

}  // namespace tg::cpu
