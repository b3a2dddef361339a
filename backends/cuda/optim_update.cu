// The fused optimizer updates on CUDA (SGD, Adam/AdamW, SPAM), one thread per element, each the same sequence of
// roundings as backends/cpu/optim_update.cpp (read its header for why). This file is compiled with --fmad=false
// (CMakeLists.txt), so the only fused multiply-adds are the explicit fma calls, as on the CPU.
#include <cmath>

#include "backends/cuda/launch.cuh"

namespace tg::cuda {

namespace {

template <class T> struct Scalars {
  T wd, mom, damp1, neg_lr, b1, c1, b2, c2, shrink, bc2, eps, neg_step, theta, neg_decay;
  explicit Scalars(const OptimUpdate& u)
      : wd(T(u.weight_decay)), mom(T(u.momentum)), damp1(T(1 - u.dampening)), neg_lr(T(-u.lr)), b1(T(u.beta1)),
        c1(T(1 - u.beta1)), b2(T(u.beta2)), c2(T(1 - u.beta2)), shrink(T(1 - u.lr * u.weight_decay)),
        bc2(T(u.bias_correction2_sqrt)), eps(T(u.eps)), neg_step(T(-u.step_size)), theta(T(u.threshold)),
        neg_decay(T(-u.lr * u.weight_decay)) {}
};

template <class T> __device__ void moments(const Scalars<T>& k, T gv, T& m, T& v) {
  m = fma(gv, k.c1, m * k.b1);
  v = fma(k.c2 * gv, gv, v * k.b2);
}

template <class T> __global__ void update_kernel(OptimUpdate u, Scalars<T> k, int64_t n, T* p, const T* g, T* s0,
                                                 T* s1, T* s2) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    T pv = p[i], gv = g[i];
    switch (u.kind) {
      case OptimKind::SGD: {
        T d = u.weight_decay != 0 ? fma(pv, k.wd, gv) : gv;
        if (u.momentum != 0) {
          T b = u.first ? d : fma(d, k.damp1, s0[i] * k.mom);
          s0[i] = b;
          d = u.nesterov ? fma(b, k.mom, d) : b;
        }
        pv = fma(d, k.neg_lr, pv);
        break;
      }
      case OptimKind::Adam: {
        T m = s0[i], v = s1[i];
        if (u.decoupled) pv = pv * k.shrink;
        if (!u.decoupled && u.weight_decay != 0) gv = fma(pv, k.wd, gv);
        moments(k, gv, m, v);
        T vv = v;
        if (u.amsgrad) {
          const T vm = s2[i];
          vv = (v > vm || v != v) ? v : vm;
          s2[i] = vv;
        }
        pv = pv + (k.neg_step * m) / (sqrt(vv) / k.bc2 + k.eps);
        s0[i] = m;
        s1[i] = v;
        break;
      }
      case OptimKind::SPAM: {
        T m = s0[i], v = s1[i];
        if (u.reset) m = v = T(0);
        if (u.clip) {
          const T cap2 = k.theta * v;
          if (gv * gv > cap2) gv = copysign(sqrt(cap2), gv);
        }
        moments(k, gv, m, v);
        pv = fma(m / (sqrt(v) + k.eps), k.neg_step, pv);
        if (u.weight_decay > 0) pv = fma(pv, k.neg_decay, pv);
        s0[i] = m;
        s1[i] = v;
        break;
      }
    }
    p[i] = pv;
  }
}

}  // namespace

template <class T> void launch_optim_update(const OptimUpdate& u, int64_t n, T* p, const T* g, T* s0, T* s1, T* s2,
                                            cudaStream_t s) {
  if (n == 0) return;
  update_kernel<T><<<grid_for(n), kBlock, 0, s>>>(u, Scalars<T>(u), n, p, g, s0, s1, s2);
}

template void launch_optim_update<float>(const OptimUpdate&, int64_t, float*, const float*, float*, float*, float*,
                                         cudaStream_t);
template void launch_optim_update<double>(const OptimUpdate&, int64_t, double*, const double*, double*, double*,
                                          double*, cudaStream_t);

}  // namespace tg::cuda
