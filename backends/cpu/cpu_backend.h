// The CPU backend: each family of methods is defined in the file named for it (unary.cpp, reduce.cpp, ...).
#pragma once
#include "backends/backend.h"

namespace tg::cpu {

class CpuBackend final : public Backend {
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
  // fused optimizer kernels (optim_update.cpp)
  void optim_update(const OptimUpdate& u, const Tensor& p, const Tensor& g, const Tensor& s0, const Tensor& s1,
                    const Tensor& s2) override;
  // fused nn kernels (nn_fused.cpp)
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
  // fused rnn kernels (rnn.cpp)
  void rnn_forward(const RnnTensors& t) override;
  void rnn_backward(const RnnTensors& t, const RnnGrads& g) override;
  void logcumsumexp(const Tensor& x, const Tensor& out) override;
  void logcumsumexp_backward(const Tensor& x, const Tensor& out, const Tensor& grad_out, const Tensor& grad_x) override;
  // fused attention kernels (attention.cpp)
  void attention_forward(const AttentionTensors& t) override;
  void attention_backward(const AttentionTensors& t, const Tensor& grad_out, const Tensor& grad_q,
                          const Tensor& grad_k, const Tensor& grad_v) override;
  // the selective scan (selective_scan.cpp)
  void selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      const Tensor& D, const Tensor& y) override;
  void selective_scan_backward(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                               const Tensor& C, const Tensor& D, const Tensor& grad_y, const Tensor& grad_u,
                               const Tensor& grad_delta, const Tensor& grad_A, const Tensor& grad_B,
                               const Tensor& grad_C, const Tensor& grad_D) override;
  // the FFT long convolution (fft_conv.cpp)
  void fft_conv(const Tensor& u, const Tensor& k, const Tensor& y) override;
  void fft_conv_backward(const Tensor& u, const Tensor& k, const Tensor& grad_y, const Tensor& grad_u,
                         const Tensor& grad_k) override;
};

}  // namespace tg::cpu
