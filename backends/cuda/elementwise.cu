// Elementwise CUDA kernels: unary, binary (tensor-tensor with broadcast strides, and tensor-scalar), where, dtype
// conversion and fill, each a device functor over the shared loop in launch.cuh. The formulas are the CPU
// backend's (backends/cpu/unary.cpp, binary.cpp), operation for operation.
#include <cmath>

#include "backends/cuda/launch.cuh"

namespace tg::cuda {

namespace {

template <class T> __device__ T sigmoid_of(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

template <class T> struct UnaryFn {
  UnaryOp op;
  T lo, hi;
  char* out;
  const char* x;
  __device__ void operator()(const int64_t (&off)[2]) const { at<T>(out, off[0]) = apply(at<T>(x, off[1])); }
  __device__ T apply(T v) const {
    switch (op) {
      case UnaryOp::Neg: return static_cast<T>(-v);
      case UnaryOp::Abs: return v < T(0) ? static_cast<T>(-v) : v;
      case UnaryOp::Sign: return static_cast<T>((T(0) < v) - (v < T(0)));
      case UnaryOp::Clamp: return v < lo ? lo : (v > hi ? hi : v);
      case UnaryOp::ClampMask: return static_cast<T>(v >= lo && v <= hi);
      default: break;
    }
    if constexpr (std::is_floating_point_v<T>) {
      constexpr T kSqrt1_2 = T(0.70710678118654752440), kInvSqrt2Pi = T(0.39894228040143267794);
      constexpr T kSqrt2OverPi = T(0.79788456080286535588), kC = T(0.044715);
      switch (op) {
        case UnaryOp::Exp: return exp(v);
        case UnaryOp::Log: return log(v);
        case UnaryOp::Sqrt: return sqrt(v);
        case UnaryOp::Rsqrt: return T(1) / sqrt(v);
        case UnaryOp::Sin: return sin(v);
        case UnaryOp::Cos: return cos(v);
        case UnaryOp::Tanh: return tanh(v);
        case UnaryOp::Sigmoid: return sigmoid_of(v);
        case UnaryOp::Relu: return v < T(0) ? T(0) : v;
        case UnaryOp::GeluErf: return T(0.5) * v * (T(1) + erf(v * kSqrt1_2));
        case UnaryOp::GeluTanh: return T(0.5) * v * (T(1) + tanh(kSqrt2OverPi * (v + kC * v * v * v)));
        case UnaryOp::Silu: return v * sigmoid_of(v);
        case UnaryOp::Softplus: return v * lo > hi ? v : log1p(exp(v * lo)) / lo;
        case UnaryOp::PowScalar: return pow(v, lo);
        case UnaryOp::GeluErfGrad:
          return T(0.5) * (T(1) + erf(v * kSqrt1_2)) + v * kInvSqrt2Pi * exp(T(-0.5) * v * v);
        case UnaryOp::GeluTanhGrad: {
          const T t = tanh(kSqrt2OverPi * (v + kC * v * v * v));
          return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * kSqrt2OverPi * (T(1) + T(3) * kC * v * v);
        }
        case UnaryOp::SiluGrad: {
          const T s = sigmoid_of(v);
          return s * (T(1) + v * (T(1) - s));
        }
        case UnaryOp::SoftplusGrad: return v * lo > hi ? T(1) : sigmoid_of(v * lo);
        default: break;
      }
    }
    return v;  // unreachable: the host refuses ops a dtype lacks (cuda_backend.cpp)
  }
};

template <class T> struct LogicalNotFn {
  char* out;
  const char* x;
  __device__ void operator()(const int64_t (&off)[2]) const { at<bool>(out, off[0]) = at<T>(x, off[1]) == T(0); }
};

template <class T> struct BinaryFn {
  BinaryOp op;
  char* out;
  const char* a;
  const char* b;  // null: use scalar
  T scalar;
  __device__ void operator()(const int64_t (&off)[3]) const {
    const T x = at<T>(a, off[1]), y = b ? at<T>(b, off[2]) : scalar;
    switch (op) {
      case BinaryOp::Add: at<T>(out, off[0]) = static_cast<T>(x + y); return;
      case BinaryOp::Sub: at<T>(out, off[0]) = static_cast<T>(x - y); return;
      case BinaryOp::Mul: at<T>(out, off[0]) = static_cast<T>(x * y); return;
      case BinaryOp::Div: at<T>(out, off[0]) = static_cast<T>(x / y); return;
      case BinaryOp::Pow:
        if constexpr (std::is_floating_point_v<T>) at<T>(out, off[0]) = pow(x, y);
        else at<T>(out, off[0]) = static_cast<T>(pow(static_cast<double>(x), static_cast<double>(y)));
        return;
      case BinaryOp::Maximum: at<T>(out, off[0]) = (x > y || x != x) ? x : y; return;  // NaN propagates
      case BinaryOp::Minimum: at<T>(out, off[0]) = (x < y || x != x) ? x : y; return;
      case BinaryOp::Eq: at<bool>(out, off[0]) = x == y; return;
      case BinaryOp::Ne: at<bool>(out, off[0]) = x != y; return;
      case BinaryOp::Lt: at<bool>(out, off[0]) = x < y; return;
      case BinaryOp::Le: at<bool>(out, off[0]) = x <= y; return;
      case BinaryOp::Gt: at<bool>(out, off[0]) = x > y; return;
      case BinaryOp::Ge: at<bool>(out, off[0]) = x >= y; return;
      case BinaryOp::LogicalAnd: at<bool>(out, off[0]) = x != T(0) && y != T(0); return;
      case BinaryOp::LogicalOr: at<bool>(out, off[0]) = x != T(0) || y != T(0); return;
    }
  }
};

template <class T> struct WhereFn {
  char* out;
  const char *cond, *a, *b;
  __device__ void operator()(const int64_t (&off)[4]) const {
    at<T>(out, off[0]) = at<bool>(cond, off[1]) ? at<T>(a, off[2]) : at<T>(b, off[3]);
  }
};

// As the CPU's scalar_cast: float to integer saturates and NaN becomes 0; to bool is v != 0.
template <class TO, class TI> __device__ TO convert(TI v) {
  if constexpr (std::is_same_v<TO, bool>) return v != TI(0);
  else if constexpr (std::is_floating_point_v<TI> && std::is_integral_v<TO>) {
    if (v != v) return 0;
    if (v >= TI(9.2233720368547748e18)) return INT64_MAX;
    if (v <= TI(-9.2233720368547758e18)) return INT64_MIN;
    return static_cast<TO>(v);
  } else return static_cast<TO>(v);
}

template <class TO, class TI> struct ConvertFn {
  char* out;
  const char* in;
  __device__ void operator()(const int64_t (&off)[2]) const { at<TO>(out, off[0]) = convert<TO>(at<TI>(in, off[1])); }
};

template <class T> struct FillFn {
  char* out;
  T v;
  __device__ void operator()(const int64_t (&off)[1]) const { at<T>(out, off[0]) = v; }
};

}  // namespace

template <class T> void launch_unary(UnaryOp op, const Indexer<2>& ix, char* out, const char* x, double p0, double p1,
                                     cudaStream_t s) {
  run_elementwise(ix, UnaryFn<T>{op, static_cast<T>(p0), static_cast<T>(p1), out, x}, s);
}
template <class T> void launch_logical_not(const Indexer<2>& ix, char* out, const char* x, cudaStream_t s) {
  run_elementwise(ix, LogicalNotFn<T>{out, x}, s);
}
template <class T> void launch_binary(BinaryOp op, const Indexer<3>& ix, char* out, const char* a, const char* b,
                                      T b_scalar, cudaStream_t s) {
  run_elementwise(ix, BinaryFn<T>{op, out, a, b, b_scalar}, s);
}
template <class T> void launch_where(const Indexer<4>& ix, char* out, const char* cond, const char* a, const char* b,
                                     cudaStream_t s) {
  run_elementwise(ix, WhereFn<T>{out, cond, a, b}, s);
}
template <class TO, class TI> void launch_convert(const Indexer<2>& ix, char* out, const char* in, cudaStream_t s) {
  run_elementwise(ix, ConvertFn<TO, TI>{out, in}, s);
}
template <class T> void launch_fill(const Indexer<1>& ix, char* out, T value, cudaStream_t s) {
  run_elementwise(ix, FillFn<T>{out, value}, s);
}

#define TG_INSTANTIATE(T)                                                                                          \
  template void launch_logical_not<T>(const Indexer<2>&, char*, const char*, cudaStream_t);                       \
  template void launch_binary<T>(BinaryOp, const Indexer<3>&, char*, const char*, const char*, T, cudaStream_t);  \
  template void launch_where<T>(const Indexer<4>&, char*, const char*, const char*, const char*, cudaStream_t);   \
  template void launch_fill<T>(const Indexer<1>&, char*, T, cudaStream_t);                                        \
  template void launch_convert<T, bool>(const Indexer<2>&, char*, const char*, cudaStream_t);                     \
  template void launch_convert<T, int64_t>(const Indexer<2>&, char*, const char*, cudaStream_t);                  \
  template void launch_convert<T, float>(const Indexer<2>&, char*, const char*, cudaStream_t);                    \
  template void launch_convert<T, double>(const Indexer<2>&, char*, const char*, cudaStream_t);
TG_INSTANTIATE(bool)
TG_INSTANTIATE(int64_t)
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE
template void launch_unary<int64_t>(UnaryOp, const Indexer<2>&, char*, const char*, double, double, cudaStream_t);
template void launch_unary<float>(UnaryOp, const Indexer<2>&, char*, const char*, double, double, cudaStream_t);
template void launch_unary<double>(UnaryOp, const Indexer<2>&, char*, const char*, double, double, cudaStream_t);

}  // namespace tg::cuda
