// The selective scan of Mamba (S6) on the CPU: Backend::selective_scan and selective_scan_backward.
//
// One (batch, channel) pair is an independent recurrence over time with an N-wide state (N = d_state, 16 in
// Mamba): h_t = exp(delta_t A) * h_t-1 + delta_t u_t B_t, y_t = <C_t, h_t> + D u_t. The kernel walks time once per
// pair with h in a local array (one AVX-512 register for N = 16 floats, a compile-time case), so the [Bt, L, E, N] tensor of states is
// never stored: forward keeps nothing but y, and backward recomputes the states of one pair at a time into an
// [L, N] scratch buffer (a few KiB to 256 KiB, in L1/L2) before running the adjoint recurrence in reverse. This is
// the paper's "hardware-aware" recomputation, with the CPU cache in the role of the GPU's SRAM.
//
// The loops over the state are `omp simd` so that their sums may be reassociated into vector lanes (a fixed
// order, so results stay bitwise repeatable).
//
// Threads: the pairs are split into contiguous static blocks (the same thread count gives the same bits). Every
// pair owns its u, delta slices and its row of A and D, but B and C are shared by all channels of a batch, so their
// gradients (and A's and D's, since a channel recurs in every batch) go to per-thread buffers summed at the end in
// thread order.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

// Below this many state updates (Bt * L * E * N) the scan runs on one thread: a fork/join costs more.
constexpr int64_t kParallelWork = 1 << 16;

struct Dims {
  int64_t Bt, L, E, N;
  int64_t pairs() const { return Bt * E; }
};

Dims dims_of(const Tensor& u, const Tensor& A) { return {u.size(0), u.size(1), u.size(2), A.size(1)}; }

// [p0, p1) of the pairs for thread t of nt.
std::pair<int64_t, int64_t> block(int64_t n, int t, int nt) { return {n * t / nt, n * (t + 1) / nt}; }

// out[n] = exp(s * a[n]). float: Cephes' expf polynomial (about 2 ulp), written so that the loop vectorises
// (glibc's scalar expf would otherwise cost more than the rest of the scan); double: std::exp, for the tests.
template <class T> inline void scaled_exp(T s, const T* __restrict a, T* __restrict out, int64_t N) {
  if constexpr (std::is_same_v<T, float>) {
    // 2^n is built from its bits in an int32 array, copied over as floats: a reinterpreting cast inside the
    // loop would stop GCC from vectorising it.
    constexpr int64_t kChunk = 64;
    alignas(64) int32_t bits[kChunk];
    alignas(64) float scale[kChunk];
    for (int64_t n0 = 0; n0 < N; n0 += kChunk) {
      const int64_t m = std::min(kChunk, N - n0);
#pragma omp simd
      for (int64_t k = 0; k < m; ++k) {
        float x = s * a[n0 + k];
        x = x < -87.33654f ? -87.33654f : x;  // ternaries, not std::min/max, which GCC leaves as branches
        x = x > 88.72283f ? 88.72283f : x;
        const float fx = std::floor(x * 1.44269504088896341f + 0.5f);
        x = x - fx * 0.693359375f + fx * 2.12194440e-4f;
        float y = 1.9875691500e-4f;
        y = y * x + 1.3981999507e-3f;
        y = y * x + 8.3334519073e-3f;
        y = y * x + 4.1665795894e-2f;
        y = y * x + 1.6666665459e-1f;
        y = y * x + 5.0000001201e-1f;
        out[n0 + k] = y * x * x + x + 1.0f;
        bits[k] = (static_cast<int32_t>(fx) + 127) << 23;
      }
      std::memcpy(scale, bits, sizeof(float) * m);
#pragma omp simd
      for (int64_t k = 0; k < m; ++k) out[n0 + k] *= scale[k];
    }
  } else {
    for (int64_t n = 0; n < N; ++n) out[n] = std::exp(s * a[n]);
  }
}

// NC is N known at compile time (16, Mamba's default: whole loops in one AVX-512 register), or 0 for any N.
template <class T, int NC>
void scan_forward(const Dims& d, const T* u, const T* delta, const T* A, const T* B, const T* C, const T* D, T* y) {
  const int64_t L = d.L, E = d.E, N = NC ? NC : d.N;
#pragma omp parallel if (d.pairs() * L * N >= kParallelWork)
  {
    const auto [p0, p1] = block(d.pairs(), omp_get_thread_num(), omp_get_num_threads());
    std::vector<T> buf(2 * N);
    T* __restrict h = buf.data();
    T* __restrict a = h + N;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t b = p / E, c = p % E;
      const T* Ac = A + c * N;
      const T Dc = D ? D[c] : T(0);
      std::fill(h, h + N, T(0));
      for (int64_t t = 0; t < L; ++t) {
        const int64_t i = (b * L + t) * E + c, r = (b * L + t) * N;
        const T dt = delta[i], ut = u[i], du = dt * ut;
        const T* __restrict Bt = B + r;
        const T* __restrict Ct = C + r;
        scaled_exp(dt, Ac, a, N);
        T acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t n = 0; n < N; ++n) {
          h[n] = a[n] * h[n] + du * Bt[n];
          acc += h[n] * Ct[n];
        }
        y[i] = acc + Dc * ut;
      }
    }
  }
}

struct ScanGrads {
  void *u, *delta, *A, *B, *C, *D;  // T*, each may be null
};

template <class T, int NC>
void scan_backward(const Dims& d, const T* u, const T* delta, const T* A, const T* B, const T* C, const T* D,
                   const T* gy, const ScanGrads& out) {
  const int64_t L = d.L, E = d.E, N = NC ? NC : d.N;
  const int64_t nBC = d.Bt * L * N;
  const bool par = d.pairs() * L * N >= kParallelWork && !omp_in_parallel();
  const int nt = par ? omp_get_max_threads() : 1;
  // Per thread: gB [Bt, L, N], gC [Bt, L, N], gA [E, N], gD [E].
  const int64_t per = 2 * nBC + E * N + E;
  std::vector<T> acc(static_cast<size_t>(nt) * per, T(0));
  T* gu = static_cast<T*>(out.u);
  T* gdelta = static_cast<T*>(out.delta);
#pragma omp parallel num_threads(nt) if (par)
  {
    const int tid = omp_get_thread_num();
    const auto [p0, p1] = block(d.pairs(), tid, omp_get_num_threads());
    T* gB = acc.data() + tid * per;
    T* gC = gB + nBC;
    T* gA = gC + nBC;
    T* gD = gA + E * N;
    // This pair's decays a_t and states h_t, [L, N] each, then gh = dL/dh_t.
    std::vector<T> buf(2 * L * N + N);
    T* __restrict as = buf.data();
    T* __restrict hs = as + L * N;
    T* __restrict gh = hs + L * N;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t b = p / E, c = p % E;
      const T* __restrict Ac = A + c * N;
      const T Dc = D ? D[c] : T(0);
      for (int64_t t = 0; t < L; ++t) {
        const int64_t i = (b * L + t) * E + c, r = (b * L + t) * N;
        const T dt = delta[i], du = dt * u[i];
        const T* __restrict Bt = B + r;
        T* __restrict a = as + t * N;
        T* __restrict h = hs + t * N;
        scaled_exp(dt, Ac, a, N);
        if (t) {
          const T* __restrict hp = h - N;
          for (int64_t n = 0; n < N; ++n) h[n] = a[n] * hp[n] + du * Bt[n];
        } else {
          for (int64_t n = 0; n < N; ++n) h[n] = du * Bt[n];
        }
      }
      // The adjoint recurrence, carried back through h_t = a_t h_t-1 + ... as a_t * gh.
      std::fill(gh, gh + N, T(0));
      T* __restrict gAc = gA + c * N;
      T gDc = 0;
      for (int64_t t = L - 1; t >= 0; --t) {
        const int64_t i = (b * L + t) * E + c, r = (b * L + t) * N;
        const T dt = delta[i], ut = u[i], g = gy[i], du = dt * ut;
        const T* __restrict a = as + t * N;
        const T* __restrict h = hs + t * N;
        const T* __restrict Bt = B + r;
        const T* __restrict Ct = C + r;
        T* __restrict gBt = gB + r;
        T* __restrict gCt = gC + r;
        T ghB = 0, ghA = 0;
        if (t) {
          // d/d(delta) of exp(delta A) h_t-1 is A a_t h_t-1; of delta u B it is u B.
          const T* __restrict hp = h - N;
#pragma omp simd reduction(+ : ghB, ghA)
          for (int64_t n = 0; n < N; ++n) {
            const T ghn = gh[n] + g * Ct[n];
            gCt[n] += g * h[n];
            gBt[n] += du * ghn;
            ghB += ghn * Bt[n];
            const T w = ghn * a[n] * hp[n];  // dL/d(delta_t A_n)
            ghA += w * Ac[n];
            gAc[n] += dt * w;
            gh[n] = ghn * a[n];
          }
        } else {
#pragma omp simd reduction(+ : ghB)
          for (int64_t n = 0; n < N; ++n) {
            const T ghn = gh[n] + g * Ct[n];
            gCt[n] += g * h[n];
            gBt[n] += du * ghn;
            ghB += ghn * Bt[n];
          }
        }
        gDc += g * ut;
        if (gdelta) gdelta[i] = ut * ghB + ghA;
        if (gu) gu[i] = dt * ghB + Dc * g;
      }
      gD[c] += gDc;
    }
  }
  // Sum the per-thread partials in thread order.
  auto reduce_into = [&](void* dst, int64_t offset, int64_t n) {
    if (!dst) return;
    T* o = static_cast<T*>(dst);
    std::copy(acc.data() + offset, acc.data() + offset + n, o);
    for (int t = 1; t < nt; ++t) {
      const T* s = acc.data() + t * per + offset;
      for (int64_t k = 0; k < n; ++k) o[k] += s[k];
    }
  };
  reduce_into(out.B, 0, nBC);
  reduce_into(out.C, nBC, nBC);
  reduce_into(out.A, 2 * nBC, E * N);
  reduce_into(out.D, 2 * nBC + E * N, E);
}

// Calls f.template operator()<NC>() with NC = 16 when N is 16, else 0.
template <class F> void dispatch_state(int64_t N, F&& f) {
  if (N == 16) f.template operator()<16>();
  else f.template operator()<0>();
}

template <class T> const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
template <class T> T* mut_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

}  // namespace

void CpuBackend::selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                const Tensor& C, const Tensor& D, const Tensor& y) {
  const Dims d = dims_of(u, A);
  dispatch_floating(u.dtype(), "selective_scan", [&]<class T>() {
    dispatch_state(d.N, [&]<int NC>() {
      scan_forward<T, NC>(d, u.data<T>(), delta.data<T>(), A.data<T>(), B.data<T>(), C.data<T>(), ptr_or_null<T>(D),
                          y.data<T>());
    });
  });
}

void CpuBackend::selective_scan_backward(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                         const Tensor& C, const Tensor& D, const Tensor& grad_y,
                                         const Tensor& grad_u, const Tensor& grad_delta, const Tensor& grad_A,
                                         const Tensor& grad_B, const Tensor& grad_C, const Tensor& grad_D) {
  const Dims d = dims_of(u, A);
  dispatch_floating(u.dtype(), "selective_scan", [&]<class T>() {
    ScanGrads g{mut_or_null<T>(grad_u), mut_or_null<T>(grad_delta), mut_or_null<T>(grad_A),
                mut_or_null<T>(grad_B), mut_or_null<T>(grad_C),     mut_or_null<T>(grad_D)};
    dispatch_state(d.N, [&]<int NC>() {
      scan_backward<T, NC>(d, u.data<T>(), delta.data<T>(), A.data<T>(), B.data<T>(), C.data<T>(),
                           ptr_or_null<T>(D), grad_y.data<T>(), g);
    });
  });
}

}  // namespace tg::cpu
