// The CUDA backend's fused nn and optimizer kernels (nn_fused.cu, optim_update.cu), and the fused kernels it does
// not have yet, which say so by name instead of computing anything.
#include "backends/cuda/cuda_backend.h"

namespace tg::cuda {

int64_t CudaBackend::cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double smoothing,
                                   const Tensor& loss, const Tensor& lse) {
  const int64_t R = logits.size(0), C = logits.size(1);
  // The targets are checked on the host, as on the CPU, so a bad one is an error rather than a wrong loss.
  const std::vector<int64_t> t = target.to_vector<int64_t>();
  int64_t count = 0;
  for (int64_t r = 0; r < R; ++r) {
    if (t[r] == ignore_index) continue;
    TG_CHECK(t[r] >= 0 && t[r] < C, "cross_entropy: target {} out of range for {} classes (row {})", t[r], C, r);
    ++count;
  }
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() {
    launch_cross_entropy<T>(R, C, device_data<T>(logits), device_data<int64_t>(target), ignore_index, smoothing,
                            device_data<T>(loss), device_data<T>(lse), stream());
  });
  TG_CUDA_CHECK_LAUNCH("cross_entropy");
  return count;
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                         const Tensor& grad_loss, int64_t ignore_index, double smoothing,
                                         const Tensor& grad) {
  const int64_t R = logits.size(0), C = logits.size(1);
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&]<class T>() {
    launch_cross_entropy_backward<T>(R, C, device_data<T>(logits), device_data<int64_t>(target), device_data<T>(lse),
                                     reinterpret_cast<const T*>(device_ptr(grad_loss)), grad_loss.stride(0),
                                     ignore_index, smoothing, device_data<T>(grad), stream());
  });
  TG_CUDA_CHECK_LAUNCH("cross_entropy_backward");
}

void CudaBackend::norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                       const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  dispatch_floating(x.dtype(), "norm", [&]<class T>() {
    launch_norm<T>(x.size(0), x.size(1), device_data<T>(x), device_data<T>(weight), device_data<T>(bias), eps, center,
                   device_data<T>(out), center ? device_data<T>(mean) : nullptr, device_data<T>(rstd), stream());
  });
  TG_CUDA_CHECK_LAUNCH("norm");
}

void CudaBackend::norm_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                const Tensor& rstd, bool center, const Tensor& grad_x, const Tensor& grad_weight,
                                const Tensor& grad_bias) {
  dispatch_floating(x.dtype(), "norm_backward", [&]<class T>() {
    launch_norm_backward<T>(x.size(0), x.size(1), device_data<T>(grad_out), device_data<T>(x), device_data<T>(weight),
                            center ? device_data<T>(mean) : nullptr, device_data<T>(rstd), center,
                            device_data<T>(grad_x), device_data<T>(grad_weight), device_data<T>(grad_bias), stream());
  });
  TG_CUDA_CHECK_LAUNCH("norm_backward");
}

void CudaBackend::optim_update(const OptimUpdate& u, const Tensor& p, const Tensor& g, const Tensor& s0,
                               const Tensor& s1, const Tensor& s2) {
  for (const Tensor* t : {&p, &g, &s0, &s1, &s2})
    TG_CHECK(!t->defined() || t->is_contiguous(), "optim_update on cuda: tensors must be contiguous");
  dispatch_floating(p.dtype(), "optim_update", [&]<class T>() {
    launch_optim_update<T>(u, p.numel(), device_data<T>(p), device_data<T>(g), device_data<T>(s0), device_data<T>(s1),
                           device_data<T>(s2), stream());
  });
  TG_CUDA_CHECK_LAUNCH("optim_update");
}

void CudaBackend::rnn_forward(const RnnTensors&) {
  TG_ERROR("rnn (fused LSTM/GRU/RNN layer): not implemented on cuda yet; move the module to the cpu");
}
void CudaBackend::rnn_backward(const RnnTensors&, const RnnGrads&) {
  TG_ERROR("rnn backward (fused LSTM/GRU/RNN layer): not implemented on cuda yet");
}
void CudaBackend::logcumsumexp(const Tensor&, const Tensor&) {
  TG_ERROR("logcumsumexp (minGRU/minLSTM scan): not implemented on cuda yet");
}
void CudaBackend::logcumsumexp_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  TG_ERROR("logcumsumexp backward: not implemented on cuda yet");
}

void CudaBackend::attention_forward(const AttentionTensors&) {
  TG_ERROR("scaled_dot_product_attention (fused): not implemented on cuda yet");
}
void CudaBackend::attention_backward(const AttentionTensors&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  TG_ERROR("scaled_dot_product_attention backward (fused): not implemented on cuda yet");
}

void CudaBackend::selective_scan(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, const Tensor&) {
  TG_ERROR("selective_scan (Mamba, fused): not implemented on cuda yet");
}
void CudaBackend::selective_scan_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, const Tensor&, const Tensor&) {
  TG_ERROR("selective_scan backward (Mamba, fused): not implemented on cuda yet");
}
void CudaBackend::fft_conv(const Tensor&, const Tensor&, const Tensor&) {
  TG_ERROR("fft_conv (S4D long convolution; cuFFT): not implemented on cuda yet");
}
void CudaBackend::fft_conv_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  TG_ERROR("fft_conv backward (S4D long convolution): not implemented on cuda yet");
}

}  // namespace tg::cuda
