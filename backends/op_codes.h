// The op codes and plain parameter structs of the backend interface (backend.h). They include nothing but
// <cstdint>, so the CUDA kernels (compiled by nvcc, which cannot parse the fmt headers that core/ uses) share them
// with the CPU backend.
#pragma once
#include <cstdint>

namespace tg {

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Tanh, Sigmoid, Relu, GeluErf, GeluTanh, Silu, Softplus, Sin, Cos,
  Clamp,        // p0 = lo, p1 = hi
  PowScalar,    // p0 = exponent
  LogicalNot,   // any dtype -> bool
  // derivatives used by backward formulas (d/dx of the op, evaluated at x)
  GeluErfGrad, GeluTanhGrad, SiluGrad, SoftplusGrad,  // Softplus: p0 = beta, p1 = threshold
  ClampMask,    // 1 where lo <= x <= hi else 0 (p0 = lo, p1 = hi)
};

enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,
  Eq, Ne, Lt, Le, Gt, Ge,  // -> bool
  LogicalAnd, LogicalOr,   // -> bool
};

inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

enum class ReduceOp : uint8_t { Sum, Max, Min, ArgMax, ArgMin };

// The scalars of one fused optimizer update (see Backend::optim_update). Kernels convert each to the parameter's
// dtype where PyTorch does, so float32 parameters round as torch.optim's do.
enum class OptimKind : uint8_t {
  SGD,    // s0 = momentum buffer (when momentum != 0)
  Adam,   // s0 = exp_avg, s1 = exp_avg_sq, s2 = max_exp_avg_sq (amsgrad); L2 decay, or decoupled when `decoupled`
  SPAM,   // s0 = exp_avg, s1 = exp_avg_sq; reset, spike clipping and decoupled decay as in SPAM's official code
};
struct OptimUpdate {
  OptimKind kind = OptimKind::SGD;
  double lr = 0, weight_decay = 0;
  double momentum = 0, dampening = 0;   // SGD
  bool nesterov = false, first = false; // SGD: first = the momentum buffer is initialised from this gradient
  double beta1 = 0, beta2 = 0, eps = 0; // Adam, SPAM
  double step_size = 0;                 // Adam: lr / bias_correction1; SPAM: lr * sqrt(bc2) / bc1 * warm-up scale
  double bias_correction2_sqrt = 1;     // Adam
  bool amsgrad = false, decoupled = false;  // Adam
  bool reset = false, clip = false;     // SPAM: zero both moments first; clip spikes with threshold * exp_avg_sq
  double threshold = 0;                 // SPAM
};

}  // namespace tg
