// Fused optimizer updates (SGD, Adam/AdamW, SPAM): one in-place pass over a parameter, its gradient and its
// state, with no temporaries, parallel above kParallelGrain through the shared elementwise loop.
//
// Each update repeats torch.optim's single-tensor code operation by operation, in the parameter's dtype, so that a
// float32 trajectory rounds as PyTorch's does. The rounding of each PyTorch CPU op was probed against Debian's
// torch 1.13 (AVX2 build):
//   x.mul_(s)                   x * T(s)                      one rounding
//   x.add_(y, alpha=a)          fma(y, T(a), x)               ATen's add is vec::fmadd, also in the scalar tail
//   x.addcmul_(y, z, value=c)   fma(T(c) * y, z, x)           the compiler fuses the last multiply-add
//   x.addcdiv_(y, z, value=c)   x + (T(c) * y) / z            three roundings
//   x / s, sqrt(x), x + s       one rounding each
// This file is compiled with -ffp-contract=off (see CMakeLists.txt), so the only fused multiply-adds are the
// explicit std::fma calls below, wherever the build runs.
#include <array>
#include <cmath>
#include <utility>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

// The loop every update shares: calls f(p, g, s...) per element, where S state tensors travel with p and g.
// The dense case (every operand contiguous along the run) indexes plain pointers so the compiler can vectorise.
template <class T, size_t S, class F>
void update_loop(const Tensor& p, const Tensor& g, const std::array<Tensor, S>& s, F f) {
  std::array<Operand, S + 2> ops;
  ops[0] = operand(p);
  ops[1] = operand(g);
  for (size_t k = 0; k < S; ++k) ops[k + 2] = operand(s[k]);
  for_each(p.sizes(), ops, [&](const std::array<char*, S + 2>& ptr, int64_t n, const std::array<int64_t, S + 2>& st) {
    bool dense = true;
    for (int64_t x : st) dense = dense && x == static_cast<int64_t>(sizeof(T));
    [&]<size_t... K>(std::index_sequence<K...>) {
      if (dense) {
        T* P = reinterpret_cast<T*>(ptr[0]);
        const T* G = reinterpret_cast<const T*>(ptr[1]);
        std::array<T*, S> A{reinterpret_cast<T*>(ptr[K + 2])...};
        F local = f;  // a private copy: its scalars live in registers, not behind a pointer the stores may alias
        for (int64_t i = 0; i < n; ++i) local(P[i], G[i], A[K][i]...);
      } else {
        for (int64_t i = 0; i < n; ++i)
          f(*reinterpret_cast<T*>(ptr[0] + i * st[0]), *reinterpret_cast<const T*>(ptr[1] + i * st[1]),
            *reinterpret_cast<T*>(ptr[K + 2] + i * st[K + 2])...);
      }
    }(std::make_index_sequence<S>{});
  });
}

// torch.optim.SGD: d = g + wd p; buf = momentum buf + (1 - dampening) d (buf = d on the first step);
// d = nesterov ? d + momentum buf : buf; p -= lr d.
template <class T> void sgd(const OptimUpdate& u, const Tensor& p, const Tensor& g, const Tensor& buf) {
  const T wd = T(u.weight_decay), mom = T(u.momentum), damp1 = T(1 - u.dampening), neg_lr = T(-u.lr);
  const bool decay = u.weight_decay != 0;
  auto grad_of = [=](T pv, T gv) { return decay ? std::fma(pv, wd, gv) : gv; };
  if (u.momentum == 0) {
    update_loop<T, 0>(p, g, {}, [=](T& pv, T gv) { pv = std::fma(grad_of(pv, gv), neg_lr, pv); });
    return;
  }
  const bool first = u.first, nesterov = u.nesterov;
  update_loop<T, 1>(p, g, {buf}, [=](T& pv, T gv, T& b) {
    T d = grad_of(pv, gv);
    b = first ? d : std::fma(d, damp1, b * mom);
    d = nesterov ? std::fma(b, mom, d) : b;
    pv = std::fma(d, neg_lr, pv);
  });
}

// The moment updates Adam and SPAM share: m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2.
template <class T> struct Moments {
  T b1, c1, b2, c2;
  explicit Moments(const OptimUpdate& u) : b1(T(u.beta1)), c1(T(1 - u.beta1)), b2(T(u.beta2)), c2(T(1 - u.beta2)) {}
  void operator()(T gv, T& m, T& v) const {
    m = std::fma(gv, c1, m * b1);      // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    v = std::fma(c2 * gv, gv, v * b2);  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
  }
};

// torch.optim.Adam / AdamW (single-tensor path, capturable=False).
template <class T> void adam(const OptimUpdate& u, const Tensor& p, const Tensor& g, const Tensor& m,
                             const Tensor& v, const Tensor& vmax) {
  const Moments<T> moments(u);
  const T wd = T(u.weight_decay), shrink = T(1 - u.lr * u.weight_decay), bc2 = T(u.bias_correction2_sqrt),
          eps = T(u.eps), neg_step = T(-u.step_size);
  const bool l2 = !u.decoupled && u.weight_decay != 0, decoupled = u.decoupled;
  auto body = [=](T& pv, T gv, T& mv, T& vv) {
    if (decoupled) pv = pv * shrink;   // param.mul_(1 - lr * weight_decay)
    if (l2) gv = std::fma(pv, wd, gv);  // grad = grad.add(param, alpha=weight_decay)
    moments(gv, mv, vv);
  };
  // denom = (sqrt(v) / sqrt(bias_correction2)).add_(eps); param.addcdiv_(exp_avg, denom, value=-step_size)
  auto apply = [=](T& pv, T mv, T vv) { pv = pv + (neg_step * mv) / (std::sqrt(vv) / bc2 + eps); };
  if (u.amsgrad) {
    update_loop<T, 3>(p, g, {m, v, vmax}, [=](T& pv, T gv, T& mv, T& vv, T& vm) {
      body(pv, gv, mv, vv);
      vm = (vv > vm || vv != vv) ? vv : vm;  // torch.maximum, which propagates NaN
      apply(pv, mv, vm);
    });
  } else {
    update_loop<T, 2>(p, g, {m, v}, [=](T& pv, T gv, T& mv, T& vv) {
      body(pv, gv, mv, vv);
      apply(pv, mv, vv);
    });
  }
}

// SPAM (galore_torch/SPAM.py): optional momentum reset, spike clipping against threshold * v_{t-1}, the Adam moments,
// eps outside sqrt(v), then the decoupled decay p.add_(p, alpha=-lr * wd).
template <class T> void spam(const OptimUpdate& u, const Tensor& p, const Tensor& g, const Tensor& m,
                             const Tensor& v) {
  const Moments<T> moments(u);
  const T theta = T(u.threshold), eps = T(u.eps), neg_step = T(-u.step_size), neg_decay = T(-u.lr * u.weight_decay);
  const bool reset = u.reset, clip = u.clip, decay = u.weight_decay > 0;
  update_loop<T, 2>(p, g, {m, v}, [=](T& pv, T gv, T& mv, T& vv) {
    if (reset) mv = vv = T(0);
    if (clip) {
      T cap2 = theta * vv;                                    // threshold * exp_avg_sq
      if (gv * gv > cap2) gv = std::copysign(std::sqrt(cap2), gv);  // sign(g) * sqrt(exp_avg_sq * threshold)
    }
    moments(gv, mv, vv);
    pv = std::fma(mv / (std::sqrt(vv) + eps), neg_step, pv);  // p.add_(exp_avg / denom, alpha=-step_size * scale)
    if (decay) pv = std::fma(pv, neg_decay, pv);              // p.add_(p, alpha=-lr * weight_decay)
  });
}

}  // namespace

void CpuBackend::optim_update(const OptimUpdate& u, const Tensor& p, const Tensor& g, const Tensor& s0,
                              const Tensor& s1, const Tensor& s2) {
  dispatch_floating(p.dtype(), "optim_update", [&]<class T>() {
    switch (u.kind) {
      case OptimKind::SGD: return sgd<T>(u, p, g, s0);
      case OptimKind::Adam: return adam<T>(u, p, g, s0, s1, s2);
      case OptimKind::SPAM: return spam<T>(u, p, g, s0, s1);
    }
  });
}

}  // namespace tg::cpu
