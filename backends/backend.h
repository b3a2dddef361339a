// The interface a device backend implements, grouped by op family. core/ checks arguments and allocates
// outputs; a backend only computes. Every kernel accepts strided inputs; outputs are fresh and contiguous
// unless a method says otherwise.
#pragma once
#include <cstdint>

#include "backends/op_codes.h"
#include "core/tensor.h"

namespace tg {

// ---- fused rnn kernels: what one recurrent layer, in one direction, reads and writes (see Backend::rnn_forward).
enum class RnnCell : uint8_t { Tanh, Relu, LSTM, GRU };
inline int64_t rnn_gate_count(RnnCell c) { return c == RnnCell::LSTM ? 4 : c == RnnCell::GRU ? 3 : 1; }

// Shapes: T steps, B batch rows, I inputs, H hidden units, G = rnn_gate_count gates (PyTorch's order: LSTM i,f,g,o;
// GRU r,z,n). Every tensor is contiguous; undefined optional ones mean "none".
struct RnnTensors {
  RnnCell cell = RnnCell::Tanh;
  bool reverse = false;      // run from t = T-1 down to 0 (the backward direction of a bidirectional layer)
  Tensor x;                  // [T, B, I], time-major
  Tensor h0, c0;             // [B, H] initial state (c0: LSTM only)
  Tensor w_ih, w_hh;         // [G*H, I], [G*H, H]
  Tensor b_ih, b_hh;         // [G*H] each, optional
  Tensor lengths;            // int64 [B], optional: row b is valid for t < lengths[b]; elsewhere the state is carried
  // Written by rnn_forward, read by rnn_backward:
  Tensor out;    // [T+2, B, H]: forward [h0 | y_0 .. y_{T-1} | c_n], reverse [c_n | y_0 .. y_{T-1} | h0], where
                 // y_t is the state after time t (in time order either way); c_n is zero for non-LSTM cells
  Tensor gates;  // [T, B, G*H]: the activated gates per step
  Tensor aux;    // [T, B, H]: LSTM cell states c_t; GRU W_hn h_{t-1} + b_hn; undefined otherwise
};

// Gradients of one fused layer: grad_out [T+2, B, H] in; every other field is written when defined.
struct RnnGrads {
  Tensor out;
  Tensor x, h0, c0, w_ih, w_hh, b_ih, b_hh;
};

// ---- fused attention (see Backend::attention_forward): one scaled dot-product attention over a batch of heads.
// Shapes: B batch, H query heads, Hkv key/value heads (H a multiple of Hkv: query head h reads kv head h / (H/Hkv)),
// T queries, S keys, D = q/k width, Dv = v width. q, k, v, out and the gradients may have any strides as long as
// the last dim has stride 1.
struct AttentionTensors {
  Tensor q;             // [B, H, T, D]
  Tensor k;             // [B, Hkv, S, D]
  Tensor v;             // [B, Hkv, S, Dv]
  Tensor mask;          // optional, viewed broadcast (stride 0) as [B, H, T, S]: bool (true = attend) or q's dtype (added)
  bool causal = false;  // key j is masked for query i when j > i (top-left aligned, as PyTorch's is_causal)
  double scale = 1;     // multiplies q k^T
  double dropout_p = 0; // probability of zeroing an attention weight; the kept ones are scaled by 1 / (1 - p)
  uint64_t dropout_seed = 0;
  Tensor out;           // [B, H, T, Dv], written by attention_forward
  Tensor lse;           // [B, H, T] contiguous: each row's logsumexp of the masked, scaled logits (-inf if all masked)
};

// Whether attention weight (b, h, i, j) survives dropout: a counter-based hash of the seed and the weight's flat
// index, so that backward regenerates the mask block by block instead of storing it (T x S per head).
inline bool attention_dropout_keep(uint64_t seed, uint64_t flat_index, double p) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (flat_index + 1);  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53 >= p;
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p) = 0;

  // dst = src, elementwise over dst's shape (src already broadcast to it), converting dtypes. dst may be a view.
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  virtual void fill(const Tensor& dst, double value) = 0;  // dst may be a view

  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) = 0;
  // a and b are views broadcast to out's shape with the same dtype; out is bool for comparisons.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  virtual void binary_scalar(BinaryOp op, const Tensor& a, double b, const Tensor& out) = 0;
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;

  // Reduces x over `dims` (sorted, unique) into out, whose shape is x's with those dims kept as size 1.
  virtual void reduce(ReduceOp op, const Tensor& x, const Shape& dims, const Tensor& out) = 0;
  virtual void cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) = 0;
  virtual void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) = 0;
  // grad_x from the forward output y and grad_y.
  virtual void softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log,
                                const Tensor& grad_x) = 0;

  // out[b] = a[b] @ b[b] for 3-d a [B, M, K], b [B, K, N] (any strides; stride 0 broadcasts a batch).
  virtual void matmul(const Tensor& a, const Tensor& b, const Tensor& out) = 0;

  virtual void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) = 0;
  virtual void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) = 0;
  // out[..., index[i], ...] += src[..., i, ...] along dim (in place on out).
  virtual void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;
  // out[index[p] at dim, rest of p] += src[p] (in place on out), as torch.scatter_add_.
  virtual void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;
  // Keeps the lower (or upper) triangle of the last two dims relative to diagonal k, zeroing the rest.
  virtual void triangle(const Tensor& x, int64_t k, bool upper, const Tensor& out) = 0;

  // ---- fused optimizer kernels (backends/cpu/optim_update.cpp)
  // One in-place pass over a parameter p, its gradient g and its state tensors s0..s2 (each p's shape and dtype,
  // undefined where the update does not use them), computing in p's dtype in PyTorch's operation order.
  virtual void optim_update(const OptimUpdate& u, const Tensor& p, const Tensor& g, const Tensor& s0,
                            const Tensor& s1, const Tensor& s2) = 0;

  // ---- fused nn kernels (backends/cpu/nn_fused.cpp), each the forward or backward of one op in nn/fused.cpp.
  // Inputs are contiguous unless noted; undefined optional tensors mean "none".
  // out [M, N] = x [M, K] @ w[N, K]^T + bias [N]: the bias rows are written first and the GEMM accumulates onto them.
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) = 0;
  // Per row r of logits [R, C] with target t_r (int64 [R]) and smoothing s: lse[r] = logsumexp(x[r]) and
  // loss[r] = lse[r] - (1 - s) x[r, t_r] - s / C sum_c x[r, c], or 0 where t_r == ignore_index. Returns the number
  // of rows not ignored; a tg::Error for a target outside [0, C).
  virtual int64_t cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double smoothing,
                                const Tensor& loss, const Tensor& lse) = 0;
  // grad[r, c] = grad_loss[r] * (exp(x[r, c] - lse[r]) - (1 - s) [c == t_r] - s / C), zero on ignored rows.
  // grad_loss [R] may be strided (a broadcast scalar has stride 0).
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                      const Tensor& grad_loss, int64_t ignore_index, double smoothing,
                                      const Tensor& grad) = 0;
  // Normalises each row of x [R, D]: layer norm (center: subtract the mean; mean [R] is written) or RMS norm (no
  // centring; mean is undefined), rstd [R] = 1 / sqrt(var + eps) (var = mean square for RMS), then
  // out = xhat * weight + bias (weight, bias [D] optional).
  virtual void norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                    const Tensor& out, const Tensor& mean, const Tensor& rstd) = 0;
  // The gradients of norm for grad_out [R, D]: grad_x [R, D], grad_weight [D], grad_bias [D]; each output is
  // written only if defined.
  virtual void norm_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight, const Tensor& mean,
                             const Tensor& rstd, bool center, const Tensor& grad_x, const Tensor& grad_weight,
                             const Tensor& grad_bias) = 0;

  // ---- fused rnn kernels (backends/cpu/rnn.cpp), the forward and backward of nn/rnn_fused.cpp's layer op.
  // rnn_forward fills t.out, t.gates and t.aux: one GEMM projects the whole input sequence, then each step runs one
  // GEMM for the recurrent part and one pointwise gate kernel. rnn_backward is backpropagation through time.
  virtual void rnn_forward(const RnnTensors& t) = 0;
  virtual void rnn_backward(const RnnTensors& t, const RnnGrads& g) = 0;
  // The log-space scan of minGRU / minLSTM (nn/min_rnn.cpp): out = logcumsumexp of x along dim 1 of [outer, L,
  // inner] (both contiguous), stable through a running maximum. grad_x from x, out and grad_out (same shape).
  virtual void logcumsumexp(const Tensor& x, const Tensor& out) = 0;
  virtual void logcumsumexp_backward(const Tensor& x, const Tensor& out, const Tensor& grad_out,
                                     const Tensor& grad_x) = 0;

  // ---- fused attention kernels (backends/cpu/attention.cpp), the forward and backward of nn/attention.cpp's
  // scaled_dot_product_attention. Forward fills t.out and t.lse with an online softmax over blocks of keys, so it
  // never holds more than one block of logits per thread. Backward recomputes each block's probabilities from
  // t.lse and writes grad_q, grad_k, grad_v (each shaped as its input; grad_k and grad_v sum over the query heads
  // that share a kv head).
  virtual void attention_forward(const AttentionTensors& t) = 0;
  virtual void attention_backward(const AttentionTensors& t, const Tensor& grad_out, const Tensor& grad_q,
                                  const Tensor& grad_k, const Tensor& grad_v) = 0;
  // ---- the selective scan of Mamba (backends/cpu/selective_scan.cpp, nn/selective_scan.cpp). All contiguous:
  // u, delta [Bt, L, E], A [E, N], B, C [Bt, L, N], D [E] or undefined; y [Bt, L, E]. Per (batch, channel):
  //   h_t = exp(delta_t A) * h_{t-1} + delta_t u_t B_t,   y_t = <C_t, h_t> + D u_t,   h_{-1} = 0.
  // The state h [N] lives in a local buffer only; backward recomputes it. Gradients are written (not added) where
  // defined.
  virtual void selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                              const Tensor& C, const Tensor& D, const Tensor& y) = 0;
  virtual void selective_scan_backward(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                       const Tensor& C, const Tensor& D, const Tensor& grad_y, const Tensor& grad_u,
                                       const Tensor& grad_delta, const Tensor& grad_A, const Tensor& grad_B,
                                       const Tensor& grad_C, const Tensor& grad_D) = 0;
  // ---- the causal long convolution of S4 (backends/cpu/fft_conv.cpp, nn/s4d.cpp) by FFT (FFTW):
  // y[b, h, l] = sum_{j <= l} k[h, j] u[b, h, l - j] for u [Bt, H, L], k [H, L], y [Bt, H, L], all contiguous.
  // Backward writes grad_u [Bt, H, L] and grad_k [H, L] where defined.
  virtual void fft_conv(const Tensor& u, const Tensor& k, const Tensor& y) = 0;
  virtual void fft_conv_backward(const Tensor& u, const Tensor& k, const Tensor& grad_y, const Tensor& grad_u,
                                 const Tensor& grad_k) = 0;
};

// The backend for a device; a tg::Error if that backend was not built.
Backend& backend_for(Device d);
inline Backend& backend_for(const Tensor& t) { return backend_for(t.device()); }

}  // namespace tg
