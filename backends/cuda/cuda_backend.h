// The CUDA backend: the Backend interface (backends/backend.h) over the kernels of kernels.h and cuBLAS. Each
// family of methods is defined in the host file named for it (cuda_backend.cpp: memory, copies and elementwise;
// cuda_reduce.cpp; cuda_matmul.cpp: matmul and linear; cuda_nn.cpp: fused nn, optimizer and rnn kernels). Host
// code turns tensors into device pointers and Indexers; the .cu files only compute.
#pragma once
#include <array>

#include "backends/backend.h"
#include "backends/cuda/check.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/runtime.h"

namespace tg::cuda {

// The first element of a device tensor (Tensor::data_ptr is for CPU tensors only).
inline char* device_ptr(const Tensor& t) {
  return static_cast<char*>(t.storage()->data) + t.storage_offset() * static_cast<int64_t>(element_size(t.dtype()));
}
template <class T> T* device_data(const Tensor& t) { return t.defined() ? reinterpret_cast<T*>(device_ptr(t)) : nullptr; }

// N operands over `sizes`, each with its own element strides over that shape: size-1 dims dropped, adjacent dims
// merged where every operand allows it (as the CPU loop does), strides turned into bytes.
template <int N> Indexer<N> make_indexer(const Shape& sizes, const std::array<const Tensor*, N>& ts,
                                         const std::array<const Shape*, N>& strides) {
  Indexer<N> ix;
  for (size_t d = 0; d < sizes.size(); ++d) {
    ix.numel *= sizes[d];
    if (sizes[d] == 1) continue;
    int64_t st[N];
    for (int k = 0; k < N; ++k) st[k] = (*strides[k])[d] * static_cast<int64_t>(element_size(ts[k]->dtype()));
    if (ix.ndim > 0) {
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && ix.strides[ix.ndim - 1][k] == st[k] * sizes[d];
      if (merge) {
        ix.sizes[ix.ndim - 1] *= sizes[d];
        for (int k = 0; k < N; ++k) ix.strides[ix.ndim - 1][k] = st[k];
        continue;
      }
    }
    TG_CHECK(ix.ndim < kMaxDims, "cuda: tensors with more than {} non-mergeable dims are not supported (shape {})",
             kMaxDims, shape_str(sizes));
    ix.sizes[ix.ndim] = sizes[d];
    for (int k = 0; k < N; ++k) ix.strides[ix.ndim][k] = st[k];
    ++ix.ndim;
  }
  return ix;
}
// Each tensor walked with its own strides over `sizes` (they are already broadcast to it).
template <int N> Indexer<N> make_indexer(const Shape& sizes, const std::array<const Tensor*, N>& ts) {
  std::array<const Shape*, N> st;
  for (int k = 0; k < N; ++k) st[k] = &ts[k]->strides();
  return make_indexer<N>(sizes, ts, st);
}

class CudaBackend final : public Backend {
 public:
  void* allocate(size_t nbytes) override;
  void deallocate(void* p) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void fill(const Tensor& dst, double value) override;
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void binary_scalar(BinaryOp op, const Tensor& a, double b, const Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void reduce(ReduceOp op, const Tensor& x, const Shape& dims, const Tensor& out) override;
  void cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) override;
  void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) override;
  void softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x) override;
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) override;
  void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) override;
  void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) override;
  void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) override;
  void triangle(const Tensor& x, int64_t k, bool upper, const Tensor& out) override;
  void optim_update(const OptimUpdate& u, const Tensor& p, const Tensor& g, const Tensor& s0, const Tensor& s1,
                    const Tensor& s2) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) override;
  int64_t cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double smoothing,
                        const Tensor& loss, const Tensor& lse) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse, const Tensor& grad_loss,
                              int64_t ignore_index, double smoothing, const Tensor& grad) override;
  void norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center, const Tensor& out,
            const Tensor& mean, const Tensor& rstd) override;
  void norm_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight, const Tensor& mean,
                     const Tensor& rstd, bool center, const Tensor& grad_x, const Tensor& grad_weight,
                     const Tensor& grad_bias) override;
  void rnn_forward(const RnnTensors& t) override;
  void rnn_backward(const RnnTensors& t, const RnnGrads& g) override;
  void logcumsumexp(const Tensor& x, const Tensor& out) override;
  void logcumsumexp_backward(const Tensor& x, const Tensor& out, const Tensor& grad_out, const Tensor& grad_x) override;
  void attention_forward(const AttentionTensors& t) override;
  void attention_backward(const AttentionTensors& t, const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k,
                          const Tensor& grad_v) override;
  void selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      const Tensor& D, const Tensor& y) override;
  void selective_scan_backward(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                               const Tensor& D, const Tensor& grad_y, const Tensor& grad_u, const Tensor& grad_delta,
                               const Tensor& grad_A, const Tensor& grad_B, const Tensor& grad_C,
                               const Tensor& grad_D) override;
  void fft_conv(const Tensor& u, const Tensor& k, const Tensor& y) override;
  void fft_conv_backward(const Tensor& u, const Tensor& k, const Tensor& grad_y, const Tensor& grad_u,
                         const Tensor& grad_k) override;
};

}  // namespace tg::cuda
