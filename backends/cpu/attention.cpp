// The fused scaled dot-product attention kernels on the CPU, after FlashAttention (Dao et al. 2022, and the
// FlashAttention-2 loop order): queries in blocks of kBlockQ, keys in blocks of kBlockK, and an online softmax that
// keeps per query row only its running maximum m, its running sum l and its output accumulator. No T x S matrix is
// ever held: a thread's scratch is a few blocks, and what backward keeps is each row's logsumexp (m + log l).
// Backward recomputes each block's probabilities from that logsumexp. Work is split over (batch, head) in forward
// and over (batch, kv head) in backward, so the query heads that share a kv head (grouped-query attention) add
// into its gradient on one thread, without races. Block products go through gemm() (gemm.h), which takes the
// register-tiled kernel when its B operand is row-major: that is why each key (or value) block is transposed into
// scratch before the products that need K^T (or V^T).
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/gemm.h"

namespace tg::cpu {

namespace {

constexpr int64_t kBlockQ = 64, kBlockK = 64;

// The geometry of one 4-d operand [B, heads, rows, cols] with unit stride in cols.
template <class T> struct Heads {
  T* p;
  int64_t sb, sh, sr;
  T* at(int64_t b, int64_t h) const { return p + b * sb + h * sh; }
};

template <class T> Heads<T> heads_of(const Tensor& t) {
  return {static_cast<T*>(t.data_ptr()), t.stride(0), t.stride(1), t.stride(2)};
}

// The mask, viewed broadcast as [B, H, T, S]: a pointer per (b, h) and its row and column strides.
struct MaskView {
  const void* p = nullptr;
  bool is_bool = false;
  int64_t sb = 0, sh = 0, st = 0, ss = 0;
};

// Everything one (b, h) pair reads, resolved from AttentionTensors.
template <class T> struct Problem {
  int64_t B, H, Hkv, T_, S, D, Dv;
  Heads<T> q, k, v, out;
  T* lse;
  MaskView mask;
  bool causal;
  T scale;
  double p;
  uint64_t seed;
};

template <class T> Problem<T> problem_of(const AttentionTensors& t) {
  Problem<T> pr;
  pr.B = t.q.size(0), pr.H = t.q.size(1), pr.T_ = t.q.size(2), pr.D = t.q.size(3);
  pr.Hkv = t.k.size(1), pr.S = t.k.size(2), pr.Dv = t.v.size(3);
  pr.q = heads_of<T>(t.q), pr.k = heads_of<T>(t.k), pr.v = heads_of<T>(t.v), pr.out = heads_of<T>(t.out);
  pr.lse = t.lse.data<T>();
  if (t.mask.defined()) {
    pr.mask = {t.mask.data_ptr(), t.mask.dtype() == kBool, t.mask.stride(0), t.mask.stride(1), t.mask.stride(2),
               t.mask.stride(3)};
  }
  pr.causal = t.causal;
  pr.scale = static_cast<T>(t.scale);
  pr.p = t.dropout_p;
  pr.seed = t.dropout_seed;
  return pr;
}

// The last key block a query block [i0, i0 + bq) looks at: causal rows see keys j <= i only.
template <class T> int64_t key_end(const Problem<T>& pr, int64_t i0, int64_t bq) {
  return pr.causal ? std::min(pr.S, i0 + bq) : pr.S;
}

// dst [cols, rows] (row stride `rows`) = src [rows, cols] (row stride ld): a key or value block as K^T / V^T.
template <class T> void transpose_block(const T* src, int64_t ld, int64_t rows, int64_t cols, T* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * ld + c];
}

// s [bq, bk] = scale * Q_i K_j^T (+ mask), -inf where the mask or causality excludes a key.
template <class T>
void block_logits(const Problem<T>& pr, int64_t b, int64_t h, const T* Q, const T* K, int64_t i0, int64_t bq,
                  int64_t j0, int64_t bk, T* kt, T* s) {
  transpose_block(K + j0 * pr.k.sr, pr.k.sr, bk, pr.D, kt);
  gemm(Mat<T>{Q + i0 * pr.q.sr, bq, pr.D, pr.q.sr, 1}, Mat<T>{kt, pr.D, bk, bk, 1}, s, bk);
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const MaskView& m = pr.mask;
  for (int64_t i = 0; i < bq; ++i) {
    T* row = s + i * bk;
    for (int64_t j = 0; j < bk; ++j) row[j] *= pr.scale;
    if (m.p) {
      const int64_t base = b * m.sb + h * m.sh + (i0 + i) * m.st + j0 * m.ss;
      if (m.is_bool) {
        const bool* mp = static_cast<const bool*>(m.p) + base;
        for (int64_t j = 0; j < bk; ++j)
          if (!mp[j * m.ss]) row[j] = kNegInf;
      } else {
        const T* mp = static_cast<const T*>(m.p) + base;
        for (int64_t j = 0; j < bk; ++j) row[j] += mp[j * m.ss];
      }
    }
    if (pr.causal)
      for (int64_t j = std::max<int64_t>(0, i0 + i + 1 - j0); j < bk; ++j) row[j] = kNegInf;
  }
}

// The dropout factor of weight (b, h, i, j): 0 when dropped, 1 / (1 - p) when kept.
template <class T> T dropout_factor(const Problem<T>& pr, int64_t b, int64_t h, int64_t i, int64_t j) {
  const uint64_t flat = static_cast<uint64_t>(((b * pr.H + h) * pr.T_ + i) * pr.S + j);
  return attention_dropout_keep(pr.seed, flat, pr.p) ? static_cast<T>(1.0 / (1.0 - pr.p)) : T(0);
}

template <class F> void parallel_items(int64_t n, int64_t work_per_item, F f) {
  if (omp_get_max_threads() == 1 || omp_in_parallel() || n < 2 || n * work_per_item < kGemmParallelWork) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// One (b, h): every query block against its key blocks, with the online softmax.
template <class T> void forward_head(const Problem<T>& pr, int64_t b, int64_t h) {
  const int64_t hk = h / (pr.H / pr.Hkv), D = pr.D, Dv = pr.Dv;
  const T* Q = pr.q.at(b, h);
  const T* K = pr.k.at(b, hk);
  const T* V = pr.v.at(b, hk);
  T* O = pr.out.at(b, h);
  T* lse = pr.lse + (b * pr.H + h) * pr.T_;
  std::vector<T> kt(static_cast<size_t>(D * kBlockK)), s(static_cast<size_t>(kBlockQ * kBlockK)),
      acc(static_cast<size_t>(kBlockQ * Dv)), m(kBlockQ), l(kBlockQ);
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  for (int64_t i0 = 0; i0 < pr.T_; i0 += kBlockQ) {
    const int64_t bq = std::min(kBlockQ, pr.T_ - i0), jend = key_end(pr, i0, bq);
    std::fill(m.begin(), m.end(), kNegInf);
    std::fill(l.begin(), l.end(), T(0));
    std::fill(acc.begin(), acc.end(), T(0));
    for (int64_t j0 = 0; j0 < jend; j0 += kBlockK) {
      const int64_t bk = std::min(kBlockK, jend - j0);
      block_logits(pr, b, h, Q, K, i0, bq, j0, bk, kt.data(), s.data());
      for (int64_t i = 0; i < bq; ++i) {
        T* row = s.data() + i * bk;
        T mx = m[i];
        for (int64_t j = 0; j < bk; ++j) mx = std::max(mx, row[j]);
        if (mx == kNegInf) {  // every key so far is masked: nothing to add
          std::fill(row, row + bk, T(0));
          continue;
        }
        const T alpha = std::exp(m[i] - mx);  // 0 on the row's first unmasked block (m = -inf)
        T sum = 0;
        for (int64_t j = 0; j < bk; ++j) {
          const T e = std::exp(row[j] - mx);
          sum += e;
          row[j] = pr.p > 0 ? e * dropout_factor(pr, b, h, i0 + i, j0 + j) : e;
        }
        l[i] = l[i] * alpha + sum;  // the normaliser counts every weight, dropped or not
        m[i] = mx;
        if (alpha != T(1))
          for (int64_t c = 0; c < Dv; ++c) acc[i * Dv + c] *= alpha;
      }
      gemm(Mat<T>{s.data(), bq, bk, bk, 1}, Mat<T>{V + j0 * pr.v.sr, bk, Dv, pr.v.sr, 1}, acc.data(), Dv, true);
    }
    for (int64_t i = 0; i < bq; ++i) {
      T* o = O + (i0 + i) * pr.out.sr;
      // A fully masked row has no distribution: its output is zero (FlashAttention's choice; softmax would be NaN).
      const T inv = l[i] > 0 ? T(1) / l[i] : T(0);
      for (int64_t c = 0; c < Dv; ++c) o[c] = acc[i * Dv + c] * inv;
      lse[i0 + i] = l[i] > 0 ? m[i] + std::log(l[i]) : kNegInf;
    }
  }
}

// One (b, kv head): the gradients of every query head in its group. With P = exp(s - lse), P~ = P * dropout
// factors, dO the output gradient and Di = rowsum(dO * O):
//   dV_j += P~^T dO_i,  dP = (dO_i V_j^T) * dropout factors,  dS = P * (dP - Di),
//   dQ_i += scale dS K_j,  dK_j += scale dS^T Q_i.
template <class T>
void backward_group(const Problem<T>& pr, int64_t b, int64_t hk, const Heads<T>& gout, const Heads<T>& gq,
                    const Heads<T>& gk, const Heads<T>& gv) {
  const int64_t group = pr.H / pr.Hkv, D = pr.D, Dv = pr.Dv;
  const T* K = pr.k.at(b, hk);
  const T* V = pr.v.at(b, hk);
  T* dK = gk.at(b, hk);
  T* dV = gv.at(b, hk);
  for (int64_t r = 0; r < pr.S; ++r) {
    std::fill(dK + r * gk.sr, dK + r * gk.sr + D, T(0));
    std::fill(dV + r * gv.sr, dV + r * gv.sr + Dv, T(0));
  }
  const size_t blk = static_cast<size_t>(kBlockQ * kBlockK);
  std::vector<T> kt(static_cast<size_t>(D * kBlockK)), vt(static_cast<size_t>(Dv * kBlockK)), p(blk), pd(blk),
      dp(blk), dq(static_cast<size_t>(kBlockQ * D)), di(kBlockQ);
  for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
    const T* Q = pr.q.at(b, h);
    const T* O = pr.out.at(b, h);
    const T* dO = gout.at(b, h);
    T* dQ = gq.at(b, h);
    const T* lse = pr.lse + (b * pr.H + h) * pr.T_;
    for (int64_t i0 = 0; i0 < pr.T_; i0 += kBlockQ) {
      const int64_t bq = std::min(kBlockQ, pr.T_ - i0), jend = key_end(pr, i0, bq);
      for (int64_t i = 0; i < bq; ++i) {
        const T* o = O + (i0 + i) * pr.out.sr;
        const T* g = dO + (i0 + i) * gout.sr;
        T acc = 0;
        for (int64_t c = 0; c < Dv; ++c) acc += o[c] * g[c];
        di[i] = acc;
      }
      std::fill(dq.begin(), dq.end(), T(0));
      for (int64_t j0 = 0; j0 < jend; j0 += kBlockK) {
        const int64_t bk = std::min(kBlockK, jend - j0);
        block_logits(pr, b, h, Q, K, i0, bq, j0, bk, kt.data(), p.data());
        for (int64_t i = 0; i < bq; ++i) {
          const T l = lse[i0 + i];
          T* row = p.data() + i * bk;
          for (int64_t j = 0; j < bk; ++j) row[j] = l == -std::numeric_limits<T>::infinity() ? T(0) : std::exp(row[j] - l);
          if (pr.p > 0)
            for (int64_t j = 0; j < bk; ++j) pd[i * bk + j] = row[j] * dropout_factor(pr, b, h, i0 + i, j0 + j);
        }
        const T* pt = pr.p > 0 ? pd.data() : p.data();
        gemm(Mat<T>{pt, bk, bq, 1, bk}, Mat<T>{dO + i0 * gout.sr, bq, Dv, gout.sr, 1}, dV + j0 * gv.sr, gv.sr, true);
        transpose_block(V + j0 * pr.v.sr, pr.v.sr, bk, Dv, vt.data());
        gemm(Mat<T>{dO + i0 * gout.sr, bq, Dv, gout.sr, 1}, Mat<T>{vt.data(), Dv, bk, bk, 1}, dp.data(), bk);
        for (int64_t i = 0; i < bq; ++i)
          for (int64_t j = 0; j < bk; ++j) {
            T g = dp[i * bk + j];
            if (pr.p > 0) g *= dropout_factor(pr, b, h, i0 + i, j0 + j);
            dp[i * bk + j] = pr.scale * p[i * bk + j] * (g - di[i]);  // now scale * dS
          }
        gemm(Mat<T>{dp.data(), bq, bk, bk, 1}, Mat<T>{K + j0 * pr.k.sr, bk, D, pr.k.sr, 1}, dq.data(), D, true);
        gemm(Mat<T>{dp.data(), bk, bq, 1, bk}, Mat<T>{Q + i0 * pr.q.sr, bq, D, pr.q.sr, 1}, dK + j0 * gk.sr, gk.sr,
             true);
      }
      for (int64_t i = 0; i < bq; ++i) std::copy(dq.data() + i * D, dq.data() + (i + 1) * D, dQ + (i0 + i) * gq.sr);
    }
  }
}

}  // namespace

void CpuBackend::attention_forward(const AttentionTensors& t) {
  if (t.out.numel() == 0) return;
  dispatch_floating(t.q.dtype(), "scaled_dot_product_attention", [&]<class T>() {
    const Problem<T> pr = problem_of<T>(t);
    parallel_items(pr.B * pr.H, pr.T_ * pr.S * (pr.D + pr.Dv), [&](int64_t bh) { forward_head(pr, bh / pr.H, bh % pr.H); });
  });
}

void CpuBackend::attention_backward(const AttentionTensors& t, const Tensor& grad_out, const Tensor& grad_q,
                                    const Tensor& grad_k, const Tensor& grad_v) {
  dispatch_floating(t.q.dtype(), "scaled_dot_product_attention_backward", [&]<class T>() {
    const Problem<T> pr = problem_of<T>(t);
    if (pr.B * pr.H * pr.T_ == 0) {  // no queries: the key and value gradients are zero
      backend_for(grad_k).fill(grad_k, 0.0);
      backend_for(grad_v).fill(grad_v, 0.0);
      return;
    }
    const Heads<T> go = heads_of<T>(grad_out), gq = heads_of<T>(grad_q), gk = heads_of<T>(grad_k),
                   gv = heads_of<T>(grad_v);
    parallel_items(pr.B * pr.Hkv, 2 * pr.T_ * pr.S * (pr.D + pr.Dv) * (pr.H / pr.Hkv),
                   [&](int64_t g) { backward_group(pr, g / pr.Hkv, g % pr.Hkv, go, gq, gk, gv); });
  });
}

}  // namespace tg::cpu
