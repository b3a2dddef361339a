// Fused recurrent layers on the CPU (Backend::rnn_forward / rnn_backward): one GEMM projects the whole input
// sequence, then each time step runs one GEMM for the recurrent part and one pointwise gate kernel; backward is
// backpropagation through time with one GEMM per step for dL/dh, and the weight gradients as whole-sequence GEMMs.
//
// Threads: the whole time loop is one OpenMP parallel region. Each thread owns a block of hidden units (for every
// gate) and computes, per step, its slice of the recurrent GEMM and then the gate math of its units, so a step
// needs one barrier and no fork/join. The four cells differ only in their pointwise math (the Cell structs
// below); the sequence loops are shared.
#include <omp.h>

// GCC 12 reports false -Wmaybe-uninitialized positives inside Eigen's AVX-512 packet math.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/tiled_gemm.h"

namespace tg::cpu {

namespace {

// C[M, N] (+)= op(A) B (B row-major; op(A) = A [M, K], or A^T for A [K, M] when TA) on one thread: the tiled
// kernel where it beats the library GEMM (AVX-512 builds), the shared GEMM of gemm.h otherwise.
template <bool TA, class T>
void layer_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                int64_t ldc, bool accumulate) {
  if constexpr (tiled::kPreferred) {
    tiled::gemm<TA>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  } else {
    if (M == 0 || N == 0) return;
    cpu::gemm(Mat<T>{A, M, K, TA ? 1 : lda, TA ? lda : 1}, Mat<T>{B, K, N, ldb, 1}, C, ldc, accumulate);
  }
}

// Below this many multiply-adds a whole-sequence product stays on one thread; a time step needs kStepParallelWork,
// since every step ends at a barrier (a few microseconds, far more when the cores are oversubscribed), so a step
// must hold some ten microseconds of work before two threads pay (char-lstm's LSTM(256) steps hold 8M).
constexpr int64_t kParallelWork = 128 * 128 * 128;
constexpr int64_t kStepParallelWork = 1 << 20;

// The whole-sequence products (the projection, dx and the weight gradients), split over the
// threads by blocks of rows of C (or of columns, when C has fewer rows). Each element is computed by one thread in
// the same order whatever the thread count.
template <bool TA, class T>
void gemm_parallel(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                   int64_t ldc, bool accumulate) {
  if (omp_get_max_threads() == 1 || omp_in_parallel() || M * N * K < kParallelWork)
    return layer_gemm<TA>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  const bool by_rows = M >= N;
  const int64_t extent = by_rows ? M : N, align = by_rows ? tiled::kTileRows : tiled::Simd<T>::n;
  const int64_t units = (extent + align - 1) / align;
#pragma omp parallel
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b0 = std::min(extent, units * t / nt * align), b1 = std::min(extent, units * (t + 1) / nt * align);
    if (b0 < b1) {
      const T* a = TA ? A + b0 : A + b0 * lda;
      if (by_rows) layer_gemm<TA>(b1 - b0, N, K, a, lda, B, ldb, C + b0 * ldc, ldc, accumulate);
      else layer_gemm<TA>(M, b1 - b0, K, A, lda, B + b0, ldb, C + b0, ldc, accumulate);
    }
  }
}

// out [cols, rows] = in [rows, cols]^T, in 16 x 16 blocks so that neither side is walked with a large stride
// (whole blocks with constant bounds, which the compiler unrolls; the edges separately).
template <class T> std::vector<T> transposed(const T* in, int64_t rows, int64_t cols) {
  std::vector<T> out(rows * cols);
  constexpr int64_t b = 16;
  auto block = [&](int64_t r0, int64_t c0, int64_t nr, int64_t nc) {
    for (int64_t c = 0; c < nc; ++c)
      for (int64_t r = 0; r < nr; ++r) out[(c0 + c) * rows + r0 + r] = in[(r0 + r) * cols + c0 + c];
  };
  for (int64_t r0 = 0; r0 < rows; r0 += b)
    for (int64_t c0 = 0; c0 < cols; c0 += b) {
      if (r0 + b <= rows && c0 + b <= cols) {
        for (int64_t c = 0; c < b; ++c)
          for (int64_t r = 0; r < b; ++r) out[(c0 + c) * rows + r0 + r] = in[(r0 + r) * cols + c0 + c];
      } else {
        block(r0, c0, std::min(b, rows - r0), std::min(b, cols - c0));
      }
    }
  return out;
}

// ---- the pointwise gate math of each cell, over n consecutive hidden units of one batch row.
template <class T> using Vec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T> using CVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// One batch row at one step, every pointer offset to the thread's first unit. Gate k of unit j is at [k * H + j].
template <class T> struct StepRow {
  T* gates;         // in: pre-activations (GRU: the input part only); out: the activated gates, kept for backward
  const T* hh;      // GRU: the recurrent pre-activations W_hh h_{t-1} (without b_hh)
  const T* b_hh;    // GRU
  const T* h_prev;  // h_{t-1}
  const T* c_prev;  // LSTM: c_{t-1}
  T* h;             // out: h_t
  T* aux;           // out: LSTM c_t; GRU W_hn h_{t-1} + b_hn
};

template <class T> struct GradRow {
  const T *gates, *aux, *h_prev, *c_prev;
  T* dh;   // in: dL/dh_t; out: the part of dL/dh_{t-1} that does not go through W_hh
  T* dc;   // LSTM: in dL/dc_t; out dL/dc_{t-1}
  T* dgx;  // out: dL/d(input pre-activations)
  T* dgh;  // out: dL/d(recurrent pre-activations); the same buffer as dgx unless kHiddenApart
};

// h = tanh(W_ih x + b_ih + W_hh h + b_hh), or relu; the activated gate is h itself.
template <bool Relu> struct ElmanCell {
  static constexpr bool kHiddenApart = false;
  template <class T> static void forward(const StepRow<T>& r, int64_t n, int64_t) {
    Vec<T> a(r.gates, n);
    if constexpr (Relu) a = a.max(T(0));
    else a = a.tanh();
    Vec<T>(r.h, n) = a;
  }
  template <class T> static void backward(const GradRow<T>& r, int64_t n, int64_t, T*) {
    CVec<T> h(r.gates, n);
    Vec<T> dh(r.dh, n);
    if constexpr (Relu) Vec<T>(r.dgx, n) = (h > T(0)).select(dh, T(0));
    else Vec<T>(r.dgx, n) = dh * (T(1) - h.square());
    dh.setZero();
  }
};

// i, f, g, o = sigma, sigma, tanh, sigma of the summed pre-activations; c = f c_prev + i g; h = o tanh(c).
struct LstmCell {
  static constexpr bool kHiddenApart = false;
  template <class T> static void forward(const StepRow<T>& r, int64_t n, int64_t H) {
    Vec<T> i(r.gates, n), f(r.gates + H, n), g(r.gates + 2 * H, n), o(r.gates + 3 * H, n), c(r.aux, n);
    i = i.logistic();
    f = f.logistic();
    g = g.tanh();
    o = o.logistic();
    c = f * CVec<T>(r.c_prev, n) + i * g;
    Vec<T>(r.h, n) = o * c.tanh();
  }
  template <class T> static void backward(const GradRow<T>& r, int64_t n, int64_t H, T* scratch) {
    CVec<T> i(r.gates, n), f(r.gates + H, n), g(r.gates + 2 * H, n), o(r.gates + 3 * H, n), c(r.aux, n);
    Vec<T> dh(r.dh, n), dc(r.dc, n), tc(scratch, n);
    tc = c.tanh();
    Vec<T>(r.dgx + 3 * H, n) = dh * tc * o * (T(1) - o);
    dc += dh * o * (T(1) - tc.square());  // dL/dc_t, through h_t and from step t+1
    Vec<T>(r.dgx, n) = dc * g * i * (T(1) - i);
    Vec<T>(r.dgx + H, n) = dc * CVec<T>(r.c_prev, n) * f * (T(1) - f);
    Vec<T>(r.dgx + 2 * H, n) = dc * i * (T(1) - g.square());
    dc *= f;
    dh.setZero();
  }
};

// r = sigma(x_r + h_r), z = sigma(x_z + h_z), n = tanh(x_n + r (W_hn h + b_hn)), h' = (1 - z) n + z h, with the
// b_hh parts added here since the recurrent pre-activations are kept apart (r multiplies W_hn h + b_hn only).
struct GruCell {
  static constexpr bool kHiddenApart = true;
  template <class T> static void forward(const StepRow<T>& row, int64_t n, int64_t H) {
    Vec<T> r(row.gates, n), z(row.gates + H, n), nn(row.gates + 2 * H, n), hn(row.aux, n);
    r = (r + CVec<T>(row.hh, n) + CVec<T>(row.b_hh, n)).logistic();
    z = (z + CVec<T>(row.hh + H, n) + CVec<T>(row.b_hh + H, n)).logistic();
    hn = CVec<T>(row.hh + 2 * H, n) + CVec<T>(row.b_hh + 2 * H, n);
    nn = (nn + r * hn).tanh();
    Vec<T>(row.h, n) = nn + z * (CVec<T>(row.h_prev, n) - nn);
  }
  template <class T> static void backward(const GradRow<T>& row, int64_t n, int64_t H, T*) {
    CVec<T> r(row.gates, n), z(row.gates + H, n), nn(row.gates + 2 * H, n), hn(row.aux, n);
    Vec<T> dh(row.dh, n), dnp(row.dgx + 2 * H, n);
    dnp = dh * (T(1) - z) * (T(1) - nn.square());  // dL/d(pre-activation of n)
    Vec<T>(row.dgx, n) = dnp * hn * r * (T(1) - r);
    Vec<T>(row.dgx + H, n) = dh * (CVec<T>(row.h_prev, n) - nn) * z * (T(1) - z);
    Vec<T>(row.dgh, n) = Vec<T>(row.dgx, n);
    Vec<T>(row.dgh + H, n) = Vec<T>(row.dgx + H, n);
    Vec<T>(row.dgh + 2 * H, n) = dnp * r;
    dh *= z;
  }
};

// ---- the shared sequence loops

// Where things are for one layer: sizes, the time order, and the slots of the packed output (backend.h).
struct Layout {
  int64_t T_, B, I, H, G;
  bool reverse;
  const int64_t* lengths;  // null: every row is valid at every step
  int64_t time(int64_t s) const { return reverse ? T_ - 1 - s : s; }  // the time index processed at step s
  bool valid(int64_t b, int64_t t) const { return !lengths || t < lengths[b]; }
  int64_t h0_slot() const { return reverse ? T_ + 1 : 0; }
  int64_t cn_slot() const { return reverse ? 0 : T_ + 1; }
  static int64_t y_slot(int64_t t) { return t + 1; }
};

// Threads for a step loop, and the unit block [j0, j1) of thread `tid` (blocks of 16 units, for whole vectors).
inline int step_threads(int64_t B, int64_t G, int64_t H) {
  if (omp_in_parallel() || B * G * H * H < kStepParallelWork) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), (H + 15) / 16));
}
inline void unit_block(int64_t H, int tid, int nt, int64_t& j0, int64_t& j1) {
  const int64_t blocks = (H + 15) / 16;
  j0 = std::min(H, blocks * tid / nt * 16);
  j1 = std::min(H, blocks * (tid + 1) / nt * 16);
}

template <class T> const T* ptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr; }
template <class T> T* mut(const Tensor& t) { return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr; }

template <class Cell, class T> void forward_loop(const RnnTensors& t, const Layout& L) {
  const int64_t Tn = L.T_, B = L.B, I = L.I, H = L.H, G = L.G, GH = G * H;
  const T *x = ptr<T>(t.x), *w_ih = ptr<T>(t.w_ih), *w_hh = ptr<T>(t.w_hh);
  const T *b_ih = ptr<T>(t.b_ih), *b_hh = ptr<T>(t.b_hh), *c0 = ptr<T>(t.c0);
  T *out = mut<T>(t.out), *gates = mut<T>(t.gates), *aux = mut<T>(t.aux);
  const bool lstm = t.cell == RnnCell::LSTM;

  // 1. The input projection of the whole sequence, onto bias rows. The recurrent bias is folded in too, except
  // for the GRU, whose n gate needs W_hn h + b_hn on its own.
  std::vector<T> bias(GH, T(0)), zero_bias(Cell::kHiddenApart ? GH : 0, T(0));
  const bool has_bias = b_ih || (b_hh && !Cell::kHiddenApart);
  for (int64_t k = 0; k < GH; ++k) bias[k] = (b_ih ? b_ih[k] : T(0)) + (b_hh && !Cell::kHiddenApart ? b_hh[k] : T(0));
  if (has_bias)
    for (int64_t r = 0; r < Tn * B; ++r) std::memcpy(gates + r * GH, bias.data(), GH * sizeof(T));
  const std::vector<T> w_ih_t = transposed(w_ih, GH, I);  // [I, G*H]
  gemm_parallel<false>(Tn * B, GH, I, x, I, w_ih_t.data(), GH, gates, GH, has_bias);

  // 2. The packed output's initial-state slot, and the step loop.
  std::memcpy(out + L.h0_slot() * B * H, ptr<T>(t.h0), B * H * sizeof(T));
  std::memset(out + L.cn_slot() * B * H, 0, B * H * sizeof(T));
  std::vector<T> hh(Cell::kHiddenApart ? B * GH : 0);
  const std::vector<T> w_hh_t = transposed(w_hh, GH, H);  // [H, G*H]: step t is h_{t-1} [B, H] @ W_hh^T
  const T* bhh = Cell::kHiddenApart ? (b_hh ? b_hh : zero_bias.data()) : nullptr;
  const int nt = step_threads(B, G, H);
#pragma omp parallel num_threads(nt)
  {
    int64_t j0, j1;
    unit_block(H, omp_get_thread_num(), omp_get_num_threads(), j0, j1);
    const int64_t n = j1 - j0;
    for (int64_t s = 0; s < Tn; ++s) {
      const int64_t tt = L.time(s), tp = s ? L.time(s - 1) : -1;
      const T* h_prev = out + (s ? L.y_slot(tp) : L.h0_slot()) * B * H;
      const T* c_prev = lstm ? (s ? aux + tp * B * H : c0) : nullptr;
      T* g_t = gates + tt * B * GH;
      if (n > 0) {
        // The recurrent part for this thread's units of every gate: accumulated onto the projection, or (GRU)
        // written apart.
        for (int64_t k = 0; k < G; ++k) {
          const T* w = w_hh_t.data() + k * H + j0;
          if (Cell::kHiddenApart) layer_gemm<false>(B, n, H, h_prev, H, w, GH, hh.data() + k * H + j0, GH, false);
          else layer_gemm<false>(B, n, H, h_prev, H, w, GH, g_t + k * H + j0, GH, true);
        }
        for (int64_t b = 0; b < B; ++b) {
          T* h = out + L.y_slot(tt) * B * H + b * H + j0;
          T* a = aux ? aux + (tt * B + b) * H + j0 : nullptr;
          if (!L.valid(b, tt)) {  // padding: the state is carried through unchanged
            std::memcpy(h, h_prev + b * H + j0, n * sizeof(T));
            if (lstm) std::memcpy(a, c_prev + b * H + j0, n * sizeof(T));
            continue;
          }
          StepRow<T> row{g_t + b * GH + j0,
                         Cell::kHiddenApart ? hh.data() + b * GH + j0 : nullptr,
                         bhh ? bhh + j0 : nullptr,
                         h_prev + b * H + j0,
                         c_prev ? c_prev + b * H + j0 : nullptr,
                         h,
                         a};
          Cell::forward(row, n, H);
        }
      }
#pragma omp barrier
    }
  }
  if (lstm && Tn > 0) std::memcpy(out + L.cn_slot() * B * H, aux + L.time(Tn - 1) * B * H, B * H * sizeof(T));
}

// Column sums of a [rows, cols] buffer into out[cols] (the bias gradients), accumulated in double.
template <class T> void column_sums(const T* a, int64_t rows, int64_t cols, T* out) {
  std::vector<double> acc(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) acc[c] += a[r * cols + c];
  for (int64_t c = 0; c < cols; ++c) out[c] = static_cast<T>(acc[c]);
}

template <class Cell, class T> void backward_loop(const RnnTensors& t, const RnnGrads& g, const Layout& L) {
  const int64_t Tn = L.T_, B = L.B, I = L.I, H = L.H, G = L.G, GH = G * H;
  const T *x = ptr<T>(t.x), *w_ih = ptr<T>(t.w_ih), *w_hh = ptr<T>(t.w_hh), *c0 = ptr<T>(t.c0);
  const T *out = ptr<T>(t.out), *gates = ptr<T>(t.gates), *aux = ptr<T>(t.aux), *dout = ptr<T>(g.out);
  const bool lstm = t.cell == RnnCell::LSTM;

  // dL/d(pre-activations) of every step; the recurrent ones are a separate buffer only for the GRU.
  Tensor dgx_t = empty({Tn * B * GH}, t.gates.options());
  Tensor dgh_t = Cell::kHiddenApart ? empty({Tn * B * GH}, t.gates.options()) : dgx_t;
  T *dgx = mut<T>(dgx_t), *dgh = mut<T>(dgh_t);
  // The carried gradients: dh is dL/dh_t for the step being processed, dc likewise for LSTM.
  std::vector<T> dh(B * H), dc(lstm ? B * H : 0);
  std::memcpy(dh.data(), dout + L.y_slot(L.time(Tn - 1)) * B * H, B * H * sizeof(T));
  if (lstm) std::memcpy(dc.data(), dout + L.cn_slot() * B * H, B * H * sizeof(T));

  const int nt = step_threads(B, G, H);
#pragma omp parallel num_threads(nt)
  {
    int64_t j0, j1;
    unit_block(H, omp_get_thread_num(), omp_get_num_threads(), j0, j1);
    const int64_t n = j1 - j0;
    std::vector<T> scratch(n);
    for (int64_t s = Tn - 1; s >= 0; --s) {
      const int64_t tt = L.time(s), tp = s ? L.time(s - 1) : -1;
      if (n > 0) {
        // dL/dh_t gets the recurrent term from step s + 1 (time L.time(s + 1)) for this thread's units.
        if (s < Tn - 1)
          layer_gemm<false>(B, n, GH, dgh + L.time(s + 1) * B * GH, GH, w_hh + j0, H, dh.data() + j0, H, true);
        const T* h_prev = out + (s ? L.y_slot(tp) : L.h0_slot()) * B * H;
        const T* c_prev = lstm ? (s ? aux + tp * B * H : c0) : nullptr;
        for (int64_t b = 0; b < B; ++b) {
          const int64_t r = tt * B + b;
          T* dhr = dh.data() + b * H + j0;
          if (!L.valid(b, tt)) {  // padding carried the state: the gradient passes straight to step t - 1
            for (int64_t k = 0; k < G; ++k) {
              std::fill_n(dgx + r * GH + k * H + j0, n, T(0));
              if (Cell::kHiddenApart) std::fill_n(dgh + r * GH + k * H + j0, n, T(0));
            }
          } else {
            GradRow<T> row{gates + r * GH + j0,
                           aux ? aux + r * H + j0 : nullptr,
                           h_prev + b * H + j0,
                           c_prev ? c_prev + b * H + j0 : nullptr,
                           dhr,
                           lstm ? dc.data() + b * H + j0 : nullptr,
                           dgx + r * GH + j0,
                           dgh + r * GH + j0};
            Cell::backward(row, n, H, scratch.data());
          }
          if (s > 0) {  // the output gradient of the next step to process (time tp)
            const T* dy = dout + L.y_slot(tp) * B * H + b * H + j0;
            for (int64_t j = 0; j < n; ++j) dhr[j] += dy[j];
          }
        }
      }
#pragma omp barrier
    }
    // dL/dh0: the recurrent term of the first step.
    if (n > 0 && Tn > 0)
      layer_gemm<false>(B, n, GH, dgh + L.time(0) * B * GH, GH, w_hh + j0, H, dh.data() + j0, H, true);
  }

  if (g.h0.defined()) std::memcpy(mut<T>(g.h0), dh.data(), B * H * sizeof(T));
  if (g.c0.defined() && lstm) std::memcpy(mut<T>(g.c0), dc.data(), B * H * sizeof(T));
  // The whole-sequence products: dW_ih = dGx^T x, dx = dGx W_ih, dW_hh = dGh^T [h_{t-1}]_t, biases = column sums.
  const int64_t TB = Tn * B;
  if (g.w_ih.defined()) gemm_parallel<true>(GH, I, TB, dgx, GH, x, I, mut<T>(g.w_ih), I, false);
  if (g.x.defined()) gemm_parallel<false>(TB, I, GH, dgx, GH, w_ih, I, mut<T>(g.x), I, false);
  if (g.w_hh.defined()) {
    // h_{t-1} for t = 0..T-1 is slots 0..T-1 of the packed output (forward) or 2..T+1 (reverse).
    const T* h_prev = out + (L.reverse ? 2 : 0) * B * H;
    gemm_parallel<true>(GH, H, TB, dgh, GH, h_prev, H, mut<T>(g.w_hh), H, false);
  }
  if (g.b_ih.defined()) column_sums(dgx, TB, GH, mut<T>(g.b_ih));
  if (g.b_hh.defined()) {
    if (dgh == dgx && g.b_ih.defined()) std::memcpy(mut<T>(g.b_hh), mut<T>(g.b_ih), GH * sizeof(T));
    else column_sums(dgh, TB, GH, mut<T>(g.b_hh));
  }
}

template <class F> void dispatch_cell(RnnCell c, F&& f) {
  switch (c) {
    case RnnCell::Tanh: return f(ElmanCell<false>{});
    case RnnCell::Relu: return f(ElmanCell<true>{});
    case RnnCell::LSTM: return f(LstmCell{});
    case RnnCell::GRU: return f(GruCell{});
  }
}

Layout layout(const RnnTensors& t) {
  return {t.x.size(0), t.x.size(1), t.x.size(2), t.w_hh.size(1), rnn_gate_count(t.cell), t.reverse,
          t.lengths.defined() ? t.lengths.data<int64_t>() : nullptr};
}

// ---- the log-space scan of minGRU / minLSTM: out_l = log(exp(out_{l-1}) + exp(x_l)) along L, per (outer, inner)
// column. Backward: out_s depends on x_t (t <= s) through d out_s / d x_t = exp(x_t - out_s), so with
// r_t = sum_{s >= t} g_s exp(out_t - out_s) = g_t + exp(out_t - out_{t+1}) r_{t+1}, grad x_t = exp(x_t - out_t) r_t.
// out is non-decreasing along L, so every exponent is <= 0: nothing overflows however long the scan.
template <class T> T log_add_exp(T a, T b) {
  const T m = std::max(a, b);
  if (m == -std::numeric_limits<T>::infinity()) return m;
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

// Calls f(o, i0, i1) over blocks of the [outer, inner] columns, in parallel when there is enough work.
template <class F> void scan_columns(int64_t outer, int64_t L, int64_t inner, F f) {
  const int64_t blocks = outer * ((inner + 63) / 64);
  const bool par = outer * L * inner >= 32768 && omp_get_max_threads() > 1 && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (par)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t per = (inner + 63) / 64, o = b / per, i0 = (b % per) * 64;
    f(o, i0, std::min(inner, i0 + 64));
  }
}

}  // namespace

void CpuBackend::logcumsumexp(const Tensor& x, const Tensor& out) {
  const int64_t outer = x.size(0), L = x.size(1), inner = x.size(2);
  dispatch_floating(x.dtype(), "logcumsumexp", [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    scan_columns(outer, L, inner, [&](int64_t o, int64_t i0, int64_t i1) {
      for (int64_t l = 0; l < L; ++l) {
        const int64_t r = (o * L + l) * inner;
        for (int64_t i = i0; i < i1; ++i) po[r + i] = l ? log_add_exp(po[r - inner + i], px[r + i]) : px[r + i];
      }
    });
  });
}

void CpuBackend::logcumsumexp_backward(const Tensor& x, const Tensor& out, const Tensor& grad_out,
                                       const Tensor& grad_x) {
  const int64_t outer = x.size(0), L = x.size(1), inner = x.size(2);
  dispatch_floating(x.dtype(), "logcumsumexp", [&]<class T>() {
    const T *px = x.data<T>(), *po = out.data<T>(), *pg = grad_out.data<T>();
    T* gx = grad_x.data<T>();
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    scan_columns(outer, L, inner, [&](int64_t o, int64_t i0, int64_t i1) {
      std::vector<T> r(i1 - i0, T(0));
      for (int64_t l = L - 1; l >= 0; --l) {
        const int64_t row = (o * L + l) * inner;
        for (int64_t i = i0; i < i1; ++i) {
          T& acc = r[i - i0];
          // exp(out_l - out_{l+1}); a column that is still -inf has no gradient to pass on
          if (l + 1 < L) acc *= po[row + inner + i] == ninf ? T(0) : std::exp(po[row + i] - po[row + inner + i]);
          acc += pg[row + i];
          gx[row + i] = px[row + i] == ninf ? T(0) : std::exp(px[row + i] - po[row + i]) * acc;
        }
      }
    });
  });
}

void CpuBackend::rnn_forward(const RnnTensors& t) {
  dispatch_floating(t.x.dtype(), "rnn", [&]<class T>() {
    dispatch_cell(t.cell, [&]<class Cell>(Cell) { forward_loop<Cell, T>(t, layout(t)); });
  });
}

void CpuBackend::rnn_backward(const RnnTensors& t, const RnnGrads& g) {
  dispatch_floating(t.x.dtype(), "rnn", [&]<class T>() {
    dispatch_cell(t.cell, [&]<class Cell>(Cell) { backward_loop<Cell, T>(t, g, layout(t)); });
  });
}

}  // namespace tg::cpu
