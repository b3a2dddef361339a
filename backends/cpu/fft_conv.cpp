// The causal long convolution of S4 by FFT (Backend::fft_conv / fft_conv_backward), over FFTW3 (libfftw3-dev).
//
// A length-L causal convolution y = k * u is a circular one of size n = 2L once both are zero-padded, so
// y = irfft(rfft(u) rfft(k))[:L]: O(L log L) instead of O(L^2). Its adjoints are correlations, computed the same
// way with a conjugate: grad_u = irfft(rfft(g) conj(rfft(k)))[:L], grad_k = sum_b irfft(rfft(g) conj(rfft(u)))[:L]
// (the padding keeps the wrapped-around terms at zero). FFTW's plans are made per call with FFTW_ESTIMATE (no
// timing runs) under a lock, since FFTW's planner is not thread-safe; executing a plan is.
#include <fftw3.h>

#include <complex>
#include <cstring>
#include <mutex>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

std::mutex& planner_lock() {
  static std::mutex m;
  return m;
}

// FFTW's float (fftwf_) and double (fftw_) APIs under one name.
template <class T> struct Fftw;
template <> struct Fftw<double> {
  using plan = fftw_plan;
  using cpx = fftw_complex;
  static plan r2c(int n, int rows, double* in, cpx* out) {
    return fftw_plan_many_dft_r2c(1, &n, rows, in, nullptr, 1, n, out, nullptr, 1, n / 2 + 1, FFTW_ESTIMATE);
  }
  static plan c2r(int n, int rows, cpx* in, double* out) {
    return fftw_plan_many_dft_c2r(1, &n, rows, in, nullptr, 1, n / 2 + 1, out, nullptr, 1, n, FFTW_ESTIMATE);
  }
  static void run(plan p) { fftw_execute(p); }
  static void destroy(plan p) { fftw_destroy_plan(p); }
};
template <> struct Fftw<float> {
  using plan = fftwf_plan;
  using cpx = fftwf_complex;
  static plan r2c(int n, int rows, float* in, cpx* out) {
    return fftwf_plan_many_dft_r2c(1, &n, rows, in, nullptr, 1, n, out, nullptr, 1, n / 2 + 1, FFTW_ESTIMATE);
  }
  static plan c2r(int n, int rows, cpx* in, float* out) {
    return fftwf_plan_many_dft_c2r(1, &n, rows, in, nullptr, 1, n / 2 + 1, out, nullptr, 1, n, FFTW_ESTIMATE);
  }
  static void run(plan p) { fftwf_execute(p); }
  static void destroy(plan p) { fftwf_destroy_plan(p); }
};

// rows signals of length L, zero-padded to n, and their spectra [rows, n / 2 + 1]. The buffers come from
// std::vector (FFTW_ESTIMATE plans accept unaligned arrays: no SIMD-alignment assumption is made for them).
template <class T> struct Spectra {
  using F = Fftw<T>;
  int64_t rows, L, n, nf;
  std::vector<T> real;
  std::vector<std::complex<T>> freq;
  Spectra(int64_t rows_, int64_t L_) : rows(rows_), L(L_), n(2 * L_), nf(L_ + 1), real(rows_ * 2 * L_, T(0)),
                                       freq(rows_ * (L_ + 1)) {}
  auto* cfreq() { return reinterpret_cast<typename F::cpx*>(freq.data()); }
  // Loads rows of length L from src (row-major) and transforms them.
  void forward(const T* src) {
    std::fill(real.begin(), real.end(), T(0));
    for (int64_t r = 0; r < rows; ++r) std::memcpy(&real[r * n], src + r * L, sizeof(T) * L);
    typename F::plan p;
    {
      std::lock_guard<std::mutex> g(planner_lock());
      p = F::r2c(static_cast<int>(n), static_cast<int>(rows), real.data(), cfreq());
    }
    F::run(p);
    std::lock_guard<std::mutex> g(planner_lock());
    F::destroy(p);
  }
  // Inverse-transforms freq and writes the first L samples of each row (divided by n: FFTW does not normalise).
  void inverse(T* dst) {
    typename F::plan p;
    {
      std::lock_guard<std::mutex> g(planner_lock());
      p = F::c2r(static_cast<int>(n), static_cast<int>(rows), cfreq(), real.data());
    }
    F::run(p);
    {
      std::lock_guard<std::mutex> g(planner_lock());
      F::destroy(p);
    }
    const T s = T(1) / static_cast<T>(n);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t l = 0; l < L; ++l) dst[r * L + l] = real[r * n + l] * s;
  }
};

}  // namespace

void CpuBackend::fft_conv(const Tensor& u, const Tensor& k, const Tensor& y) {
  const int64_t Bt = u.size(0), H = u.size(1), L = u.size(2);
  dispatch_floating(u.dtype(), "fft_conv", [&]<class T>() {
    Spectra<T> fk(H, L), fu(Bt * H, L);
    fk.forward(k.data<T>());
    fu.forward(u.data<T>());
    for (int64_t b = 0; b < Bt; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t f = 0; f < fu.nf; ++f) fu.freq[(b * H + h) * fu.nf + f] *= fk.freq[h * fk.nf + f];
    fu.inverse(y.data<T>());
  });
}

void CpuBackend::fft_conv_backward(const Tensor& u, const Tensor& k, const Tensor& grad_y, const Tensor& grad_u,
                                   const Tensor& grad_k) {
  const int64_t Bt = u.size(0), H = u.size(1), L = u.size(2);
  dispatch_floating(u.dtype(), "fft_conv", [&]<class T>() {
    Spectra<T> fg(Bt * H, L);
    fg.forward(grad_y.data<T>());
    const int64_t nf = fg.nf;
    if (grad_u.defined()) {
      Spectra<T> fk(H, L), gu(Bt * H, L);
      fk.forward(k.data<T>());
      for (int64_t b = 0; b < Bt; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t f = 0; f < nf; ++f)
            gu.freq[(b * H + h) * nf + f] = fg.freq[(b * H + h) * nf + f] * std::conj(fk.freq[h * nf + f]);
      gu.inverse(grad_u.data<T>());
    }
    if (grad_k.defined()) {
      Spectra<T> fu(Bt * H, L), gk(H, L);
      fu.forward(u.data<T>());
      std::fill(gk.freq.begin(), gk.freq.end(), std::complex<T>(0));
      for (int64_t b = 0; b < Bt; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t f = 0; f < nf; ++f)
            gk.freq[h * nf + f] += fg.freq[(b * H + h) * nf + f] * std::conj(fu.freq[(b * H + h) * nf + f]);
      gk.inverse(grad_k.data<T>());
    }
  });
}

}  // namespace tg::cpu
