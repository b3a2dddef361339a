// Elementwise binary kernels (tensor-tensor with broadcast strides, tensor-scalar) and where: one loop each
// (loops.h map2), the op chosen once per call.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

template <class T> void run(BinaryOp op, const Operand& a, const Operand& b, const Tensor& out) {
  auto arith = [&](auto f) { map2<T, T>(a, b, out, f); };
  auto cmp = [&](auto f) { map2<bool, T>(a, b, out, f); };
  switch (op) {
    case BinaryOp::Add: return arith([](T x, T y) { return static_cast<T>(x + y); });
    case BinaryOp::Sub: return arith([](T x, T y) { return static_cast<T>(x - y); });
    case BinaryOp::Mul: return arith([](T x, T y) { return static_cast<T>(x * y); });
    case BinaryOp::Div: return arith([](T x, T y) { return static_cast<T>(x / y); });
    case BinaryOp::Pow: return arith([](T x, T y) { return static_cast<T>(std::pow(x, y)); });
    case BinaryOp::Maximum: return arith([](T x, T y) { return (x > y || x != x) ? x : y; });  // NaN propagates
    case BinaryOp::Minimum: return arith([](T x, T y) { return (x < y || x != x) ? x : y; });
    case BinaryOp::Eq: return cmp([](T x, T y) { return x == y; });
    case BinaryOp::Ne: return cmp([](T x, T y) { return x != y; });
    case BinaryOp::Lt: return cmp([](T x, T y) { return x < y; });
    case BinaryOp::Le: return cmp([](T x, T y) { return x <= y; });
    case BinaryOp::Gt: return cmp([](T x, T y) { return x > y; });
    case BinaryOp::Ge: return cmp([](T x, T y) { return x >= y; });
    case BinaryOp::LogicalAnd: return cmp([](T x, T y) { return x != T(0) && y != T(0); });
    case BinaryOp::LogicalOr: return cmp([](T x, T y) { return x != T(0) || y != T(0); });
  }
}

}  // namespace

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch(a.dtype(), [&]<class T>() { run<T>(op, operand(a), operand(b), out); });
}

void CpuBackend::binary_scalar(BinaryOp op, const Tensor& a, double b, const Tensor& out) {
  dispatch(a.dtype(), [&]<class T>() {
    T bv = scalar_cast<T>(b);
    run<T>(op, operand(a), Operand{reinterpret_cast<char*>(&bv), nullptr, sizeof(T)}, out);
  });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch(out.dtype(), [&]<class T>() {
    for_each(out.sizes(), std::array<Operand, 4>{operand(out), operand(cond), operand(a), operand(b)},
             [](const std::array<char*, 4>& p, int64_t n, const std::array<int64_t, 4>& st) {
               for (int64_t i = 0; i < n; ++i) {
                 bool c = *reinterpret_cast<const bool*>(p[1] + i * st[1]);
                 *reinterpret_cast<T*>(p[0] + i * st[0]) = *reinterpret_cast<const T*>(c ? p[2] + i * st[2] : p[3] + i * st[3]);
               }
             });
  });
}

}  // namespace tg::cpu
