// Fused nn kernels on the CPU: linear (bias + GEMM in one output pass), cross-entropy forward/backward (log-softmax
// and NLL per row, never materialising the log-probabilities), and layer/RMS norm forward/backward (one kernel
// for both, `center` choosing layer norm). Rows are split among OpenMP threads above a size threshold; sums run in
// double so float32 results do not depend on the row length's rounding.
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

// Calls f(r0, r1, block) over [0, rows) in static blocks, one per thread (block = thread number, 0 when serial)
// when there are at least kParallelGrain elements of work; the blocks depend only on the thread count, so results
// are deterministic for a given count.
template <class F> void parallel_rows(int64_t rows, int64_t work_per_row, F f) {
  int threads = omp_get_max_threads();
  if (rows * work_per_row < kParallelGrain || threads == 1 || rows < 2 || omp_in_parallel()) {
    f(int64_t{0}, rows, 0);
    return;
  }
#pragma omp parallel
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    if (r0 < r1) f(r0, r1, t);
  }
}

template <class T> const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

}  // namespace

// ---- linear

// out = bias rows, then out += x @ w^T with the shared threaded GEMM (gemm.h): the bias costs one pass over the
// output and no temporary.
void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  if (out.numel() == 0) return;
  dispatch_floating(x.dtype(), "linear", [&]<class T>() {
    const T* pb = ptr_or_null<T>(bias);
    T* po = out.data<T>();
    if (pb)
      parallel_rows(M, N, [&](int64_t r0, int64_t r1, int) {
        for (int64_t i = r0; i < r1; ++i) std::copy(pb, pb + N, po + i * N);
      });
    // W^T is not row-major, which sends the product to the library GEMM; with many rows it pays to transpose W
    // once (K N copies against M K N multiply-adds) and take the tiled kernel (gemm.h): the GPT blocks' projections
    // (768 x 128 x 384 and the like) ran 1.5x faster so. With few rows the copy does not pay: at M = 128 (the mlp
    // benchmark's 512 x 512 layer) it cost more than the GEMM saved, so the row threshold is 256.
    if (tiled::kPreferred && M >= 256 && K * N * int64_t(sizeof(T)) <= (1 << 20)) {
      std::vector<T> wt(static_cast<size_t>(K * N));
      const T* pw = w.data<T>();
      constexpr int64_t kB = 32;  // square tiles, so both the reads and the writes stay within a few cache lines
      for (int64_t n0 = 0; n0 < N; n0 += kB)
        for (int64_t k0 = 0; k0 < K; k0 += kB)
          for (int64_t n = n0; n < std::min(N, n0 + kB); ++n)
            for (int64_t k = k0; k < std::min(K, k0 + kB); ++k) wt[static_cast<size_t>(k * N + n)] = pw[n * K + k];
      gemm_threaded(Mat<T>{x.data<T>(), M, K, K, 1}, Mat<T>{wt.data(), K, N, N, 1}, po, N, pb != nullptr);
      return;
    }
    gemm_threaded(Mat<T>{x.data<T>(), M, K, K, 1}, Mat<T>{w.data<T>(), K, N, 1, K}, po, N, pb != nullptr);
  });
}

// ---- cross-entropy

int64_t CpuBackend::cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double smoothing,
                                  const Tensor& loss, const Tensor& lse) {
  const int64_t R = logits.size(0), C = logits.size(1);
  const int64_t* t = target.data<int64_t>();
  int64_t count = 0;
  // Checked before any thread starts, so the error is thrown from the calling thread.
  for (int64_t r = 0; r < R; ++r) {
    if (t[r] == ignore_index) continue;
    TG_CHECK(t[r] >= 0 && t[r] < C, "cross_entropy: target {} out of range for {} classes (row {})", t[r], C, r);
    ++count;
  }
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() {
    const T* x = logits.data<T>();
    T* pl = loss.data<T>();
    T* ps = lse.data<T>();
    parallel_rows(R, C, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = x + r * C;
        T m = -std::numeric_limits<T>::infinity();
        for (int64_t c = 0; c < C; ++c) m = std::max(m, row[c]);
        if (std::isinf(m) && m < 0) m = 0;  // an all -inf row: nan as PyTorch, without inf - inf here
        double s = 0, sx = 0;
        for (int64_t c = 0; c < C; ++c) {
          s += std::exp(static_cast<double>(row[c] - m));
          sx += row[c];
        }
        const double l = m + std::log(s);
        ps[r] = static_cast<T>(l);
        if (t[r] == ignore_index) {
          pl[r] = T(0);
          continue;
        }
        double v = l - (1 - smoothing) * row[t[r]];
        if (smoothing != 0) v -= smoothing / C * sx;
        pl[r] = static_cast<T>(v);
      }
    });
  });
  return count;
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                        const Tensor& grad_loss, int64_t ignore_index, double smoothing,
                                        const Tensor& grad) {
  const int64_t R = logits.size(0), C = logits.size(1);
  const int64_t* t = target.data<int64_t>();
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&]<class T>() {
    const T* x = logits.data<T>();
    const T* ps = lse.data<T>();
    const T* pg = static_cast<const T*>(grad_loss.data_ptr());
    const int64_t gs = grad_loss.stride(0);
    T* out = grad.data<T>();
    const T off = static_cast<T>(smoothing / C), on = static_cast<T>(1 - smoothing);
    parallel_rows(R, C, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        T* o = out + r * C;
        if (t[r] == ignore_index) {
          std::fill(o, o + C, T(0));
          continue;
        }
        const T* row = x + r * C;
        const T g = pg[r * gs], l = ps[r];
        for (int64_t c = 0; c < C; ++c) o[c] = g * (std::exp(row[c] - l) - off);
        o[t[r]] -= g * on;
      }
    });
  });
}

// ---- layer norm and RMS norm

void CpuBackend::norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                      const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const int64_t R = x.size(0), D = x.size(1);
  dispatch_floating(x.dtype(), "norm", [&]<class T>() {
    const T* px = x.data<T>();
    const T* pw = ptr_or_null<T>(weight);
    const T* pb = ptr_or_null<T>(bias);
    T* po = out.data<T>();
    T* pm = center ? mean.data<T>() : nullptr;
    T* pr = rstd.data<T>();
    parallel_rows(R, D, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = px + r * D;
        double mu = 0;
        if (center) {
          for (int64_t i = 0; i < D; ++i) mu += row[i];
          mu /= static_cast<double>(D);
        }
        double ss = 0;  // two passes: the centred sum of squares loses nothing to cancellation
        for (int64_t i = 0; i < D; ++i) {
          double d = row[i] - mu;
          ss += d * d;
        }
        const T m = static_cast<T>(mu), rs = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(D) + eps));
        if (pm) pm[r] = m;
        pr[r] = rs;
        T* o = po + r * D;
        for (int64_t i = 0; i < D; ++i) {
          T v = (row[i] - m) * rs;
          if (pw) v *= pw[i];
          if (pb) v += pb[i];
          o[i] = v;
        }
      }
    });
  });
}

// With xhat = (x - mean) * rstd and dy = grad_out * weight:
//   grad_x = rstd * (dy - mean(dy) - xhat * mean(dy * xhat))   (layer norm; RMS norm drops the mean(dy) term)
//   grad_weight = sum_rows grad_out * xhat, grad_bias = sum_rows grad_out
// The column sums are accumulated per thread and added in thread order, so they are deterministic.
void CpuBackend::norm_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight, const Tensor& mean,
                               const Tensor& rstd, bool center, const Tensor& grad_x, const Tensor& grad_weight,
                               const Tensor& grad_bias) {
  const int64_t R = x.size(0), D = x.size(1);
  dispatch_floating(x.dtype(), "norm_backward", [&]<class T>() {
    const T* pg = grad_out.data<T>();
    const T* px = x.data<T>();
    const T* pw = ptr_or_null<T>(weight);
    const T* pm = center ? mean.data<T>() : nullptr;
    const T* pr = rstd.data<T>();
    T* pgx = grad_x.defined() ? grad_x.data<T>() : nullptr;
    const bool want_w = grad_weight.defined(), want_b = grad_bias.defined();
    const int threads = std::max(1, omp_get_max_threads());
    std::vector<double> acc_w(want_w ? static_cast<size_t>(threads * D) : 0, 0.0);
    std::vector<double> acc_b(want_b ? static_cast<size_t>(threads * D) : 0, 0.0);
    parallel_rows(R, D, [&](int64_t r0, int64_t r1, int tid) {
      double* aw = want_w ? acc_w.data() + tid * D : nullptr;
      double* ab = want_b ? acc_b.data() + tid * D : nullptr;
      for (int64_t r = r0; r < r1; ++r) {
        const T* g = pg + r * D;
        const T* row = px + r * D;
        const T m = pm ? pm[r] : T(0), rs = pr[r];
        if (aw || ab)
          for (int64_t i = 0; i < D; ++i) {
            if (aw) aw[i] += static_cast<double>(g[i]) * ((row[i] - m) * rs);
            if (ab) ab[i] += g[i];
          }
        if (!pgx) continue;
        double s_dy = 0, s_dyx = 0;
        for (int64_t i = 0; i < D; ++i) {
          const double dy = pw ? g[i] * pw[i] : g[i];
          s_dy += dy;
          s_dyx += dy * ((row[i] - m) * rs);
        }
        const T a = center ? static_cast<T>(s_dy / D) : T(0), b = static_cast<T>(s_dyx / D);
        T* o = pgx + r * D;
        for (int64_t i = 0; i < D; ++i) {
          const T dy = pw ? g[i] * pw[i] : g[i];
          o[i] = rs * (dy - a - (row[i] - m) * rs * b);
        }
      }
    });
    auto fold = [&](const std::vector<double>& acc, const Tensor& dst) {
      T* o = dst.data<T>();
      for (int64_t i = 0; i < D; ++i) {
        double s = 0;
        for (int t = 0; t < threads; ++t) s += acc[t * D + i];
        o[i] = static_cast<T>(s);
      }
    };
    if (want_w) fold(acc_w, grad_weight);
    if (want_b) fold(acc_b, grad_bias);
  });
}

}  // namespace tg::cpu
