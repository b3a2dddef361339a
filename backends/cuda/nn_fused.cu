// Fused nn kernels on CUDA, the counterparts of backends/cpu/nn_fused.cpp: cross-entropy forward (log-sum-exp and
// NLL per row, one block per row) and backward, the bias rows that linear's GEMM accumulates onto, and layer / RMS
// norm forward (one block per row) and backward (grad_x one block per row; grad_weight and grad_bias one thread per
// column summing over rows in order, so they are deterministic). Row sums run in double, as on the CPU.
#include <cmath>

#include "backends/cuda/launch.cuh"

namespace tg::cuda {

namespace {

template <class T> __global__ void cross_entropy_kernel(int64_t R, int64_t C, const T* logits, const int64_t* target,
                                                        int64_t ignore_index, double smoothing, T* loss, T* lse) {
  __shared__ double scratch[kRowBlock];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* row = logits + r * C;
    const int64_t t = target[r];
    const bool ignored = t == ignore_index;
    double m = -INFINITY;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = fmax(m, static_cast<double>(row[c]));
    m = block_max(m, scratch);
    if (isinf(m) && m < 0) m = 0;
    const T mt = static_cast<T>(m);
    double s = 0, sx = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      s += exp(static_cast<double>(row[c] - mt));
      sx += row[c];
    }
    s = block_sum(s, scratch);
    sx = block_sum(sx, scratch);
    if (threadIdx.x == 0) {
      const double l = static_cast<double>(mt) + ::log(s);
      lse[r] = static_cast<T>(l);
      double v = ignored ? 0.0 : l - (1 - smoothing) * row[t];
      if (!ignored && smoothing != 0) v -= smoothing / C * sx;
      loss[r] = static_cast<T>(v);
    }
  }
}

template <class T> __global__ void cross_entropy_backward_kernel(int64_t R, int64_t C, const T* logits,
                                                                 const int64_t* target, const T* lse, const T* grad_loss,
                                                                 int64_t gs, int64_t ignore_index, double smoothing,
                                                                 T* grad) {
  const int64_t n = R * C, stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  const T off = static_cast<T>(smoothing / C), on = static_cast<T>(1 - smoothing);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t r = i / C, c = i % C, t = target[r];
    if (t == ignore_index) {
      grad[i] = T(0);
      continue;
    }
    const T g = grad_loss[r * gs];
    T v = g * (exp(logits[i] - lse[r]) - off);
    if (c == t) v -= g * on;
    grad[i] = v;
  }
}

template <class T> __global__ void bias_rows_kernel(int64_t M, int64_t N, const T* bias, T* out) {
  const int64_t n = M * N, stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = bias[i % N];
}

template <class T> __global__ void norm_kernel(int64_t R, int64_t D, const T* x, const T* w, const T* b, double eps,
                                               bool center, T* out, T* mean, T* rstd) {
  __shared__ double scratch[kRowBlock];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* row = x + r * D;
    double mu = 0;
    if (center) {
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) mu += row[i];
      mu = block_sum(mu, scratch) / static_cast<double>(D);
    }
    double ss = 0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      const double d = row[i] - mu;
      ss += d * d;
    }
    ss = block_sum(ss, scratch);
    const T m = static_cast<T>(mu), rs = static_cast<T>(1.0 / sqrt(ss / static_cast<double>(D) + eps));
    if (threadIdx.x == 0) {
      if (mean) mean[r] = m;
      rstd[r] = rs;
    }
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      T v = (row[i] - m) * rs;
      if (w) v *= w[i];
      if (b) v += b[i];
      out[r * D + i] = v;
    }
  }
}

// grad_x = rstd * (dy - mean(dy) - xhat * mean(dy * xhat)), dy = grad_out * weight (RMS norm: no mean(dy) term).
template <class T> __global__ void norm_backward_x_kernel(int64_t R, int64_t D, const T* go, const T* x, const T* w,
                                                          const T* mean, const T* rstd, bool center, T* gx) {
  __shared__ double scratch[kRowBlock];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* g = go + r * D;
    const T* row = x + r * D;
    const T m = mean ? mean[r] : T(0), rs = rstd[r];
    double s_dy = 0, s_dyx = 0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      const double dy = w ? g[i] * w[i] : g[i];
      s_dy += dy;
      s_dyx += dy * ((row[i] - m) * rs);
    }
    s_dy = block_sum(s_dy, scratch);
    s_dyx = block_sum(s_dyx, scratch);
    const T a = center ? static_cast<T>(s_dy / D) : T(0), bb = static_cast<T>(s_dyx / D);
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      const T dy = w ? g[i] * w[i] : g[i];
      gx[r * D + i] = rs * (dy - a - (row[i] - m) * rs * bb);
    }
  }
}

template <class T> __global__ void norm_backward_wb_kernel(int64_t R, int64_t D, const T* go, const T* x,
                                                           const T* mean, const T* rstd, T* gw, T* gb) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= D) return;
  double aw = 0, ab = 0;
  for (int64_t r = 0; r < R; ++r) {
    const T g = go[r * D + i];
    const T m = mean ? mean[r] : T(0);
    aw += static_cast<double>(g) * ((x[r * D + i] - m) * rstd[r]);
    ab += g;
  }
  if (gw) gw[i] = static_cast<T>(aw);
  if (gb) gb[i] = static_cast<T>(ab);
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(rows < 65535 ? (rows > 0 ? rows : 1) : 65535); }

}  // namespace

template <class T> void launch_cross_entropy(int64_t R, int64_t C, const T* logits, const int64_t* target,
                                             int64_t ignore_index, double smoothing, T* loss, T* lse,
                                             cudaStream_t s) {
  if (R == 0) return;
  cross_entropy_kernel<T><<<row_blocks(R), kRowBlock, 0, s>>>(R, C, logits, target, ignore_index, smoothing, loss, lse);
}
template <class T> void launch_cross_entropy_backward(int64_t R, int64_t C, const T* logits, const int64_t* target,
                                                      const T* lse, const T* grad_loss, int64_t grad_loss_stride,
                                                      int64_t ignore_index, double smoothing, T* grad,
                                                      cudaStream_t s) {
  if (R * C == 0) return;
  cross_entropy_backward_kernel<T><<<grid_for(R * C), kBlock, 0, s>>>(R, C, logits, target, lse, grad_loss,
                                                                       grad_loss_stride, ignore_index, smoothing, grad);
}
template <class T> void launch_bias_rows(int64_t M, int64_t N, const T* bias, T* out, cudaStream_t s) {
  if (M * N == 0) return;
  bias_rows_kernel<T><<<grid_for(M * N), kBlock, 0, s>>>(M, N, bias, out);
}
template <class T> void launch_norm(int64_t R, int64_t D, const T* x, const T* w, const T* b, double eps, bool center,
                                    T* out, T* mean, T* rstd, cudaStream_t s) {
  if (R == 0) return;
  norm_kernel<T><<<row_blocks(R), kRowBlock, 0, s>>>(R, D, x, w, b, eps, center, out, mean, rstd);
}
template <class T> void launch_norm_backward(int64_t R, int64_t D, const T* grad_out, const T* x, const T* w,
                                             const T* mean, const T* rstd, bool center, T* grad_x, T* grad_w,
                                             T* grad_b, cudaStream_t s) {
  if (R == 0 || D == 0) return;
  if (grad_x)
    norm_backward_x_kernel<T><<<row_blocks(R), kRowBlock, 0, s>>>(R, D, grad_out, x, w, mean, rstd, center, grad_x);
  if (grad_w || grad_b)
    norm_backward_wb_kernel<T><<<grid_for(D), kBlock, 0, s>>>(R, D, grad_out, x, mean, rstd, grad_w, grad_b);
}

#define TG_INSTANTIATE(T)                                                                                          \
  template void launch_cross_entropy<T>(int64_t, int64_t, const T*, const int64_t*, int64_t, double, T*, T*,      \
                                        cudaStream_t);                                                   \
  template void launch_cross_entropy_backward<T>(int64_t, int64_t, const T*, const int64_t*, const T*, const T*,  \
                                                 int64_t, int64_t, double, T*, cudaStream_t);                      \
  template void launch_bias_rows<T>(int64_t, int64_t, const T*, T*, cudaStream_t);                                \
  template void launch_norm<T>(int64_t, int64_t, const T*, const T*, const T*, double, bool, T*, T*, T*,          \
                               cudaStream_t);                                                                      \
  template void launch_norm_backward<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, bool, \
                                        T*, T*, T*, cudaStream_t);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::cuda
