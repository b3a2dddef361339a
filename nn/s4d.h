// S4D (Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State Space Models"): a diagonal
// complex state space per channel, x' = A x + B u, y = 2 Re(C x) + D u, discretised with step exp(log_dt) by
// zero-order hold or the bilinear transform. The same layer runs as a convolution (the kernel K from a
// Vandermonde product, applied by FFT with FFTW: training) or as a recurrence (step(): inference), and its
// kernel can be sampled at any step size (the continuous-time view of the LSSL, Gu et al. 2021). Complex values
// are pairs of real tensors (re, im), as PyTorch's view_as_real. See docs/ssm.md.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/module.h"

namespace tg::nn {

namespace functional {
// Causal convolution along the last dim: y[b, h, l] = sum_{j <= l} k[h, j] u[b, h, l - j], u [B, H, L], k [H, L].
// One fused op by FFT (O(L log L), backends/cpu/fft_conv.cpp), backward by FFT correlations.
Tensor fft_conv(const Tensor& u, const Tensor& k);
// The same by shifted products (O(L^2)), the reference for tests.
Tensor causal_conv_ref(const Tensor& u, const Tensor& k);
}  // namespace functional

struct S4DOptions {
  int64_t d_model = 0;   // H channels, each its own SSM
  int64_t d_state = 64;  // N: N / 2 complex modes (with their conjugates, N real dims)
  std::string init = "inv";            // A's init: "lin" (S4D-Lin), "inv" (S4D-Inv) or "legs" (S4D-LegS: the
                                       // diagonal of HiPPO-LegS's normal part)
  std::string discretization = "zoh";  // or "bilinear"
  double dt_min = 0.001, dt_max = 0.1; // log_dt ~ U(log dt_min, log dt_max)
  bool bidirectional = false;          // add an anti-causal kernel with its own C (convolution mode only)
};

// The recurrent state of one layer: x [B, H, N / 2] complex.
struct S4DState {
  Tensor re, im;
};

// The S4D layer of the reference (state-spaces/s4 models/s4/s4d.py): SSM convolution + D skip, GELU, then a
// pointwise Linear(H, 2H) with a GLU. Input and output [B, L, H].
class S4D : public UnaryModule {
 public:
  explicit S4D(const S4DOptions& options, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;             // convolution mode
  Tensor forward_recurrent(const Tensor& x);            // the same by step(): for checks and teaching
  Tensor step(const Tensor& x_t, S4DState& state);      // x_t [B, H] -> [B, H]
  S4DState initial_state(int64_t batch) const;
  // The SSM kernel K [directions, H, L] at step size dt * dt_scale: dt_scale = 0.5 samples the same continuous
  // system twice as finely (and, with ZOH, each sample carries half the input's weight).
  Tensor kernel(int64_t L, double dt_scale = 1.0) const;
  std::string name() const override { return "S4D"; }

  S4DOptions options;
  Tensor log_dt;               // [H]
  Tensor log_A_real, A_imag;   // [H, N / 2]: A = -exp(log_A_real) + i A_imag
  Tensor C_re, C_im;           // [directions, H, N / 2]
  Tensor D;                    // [H]
  std::shared_ptr<Linear> output_linear;

 private:
  Tensor ssm_output(const Tensor& u_t, const Tensor& y) const;  // D skip, GELU, Linear + GLU
};

}  // namespace tg::nn
