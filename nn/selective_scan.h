// The selective scan of Mamba (Gu and Dao 2023, Algorithm 2, "S6"): a fused op with its own forward and backward
// kernels (backends/cpu/selective_scan.cpp), and the readable reference composed of tensor ops that the tests
// check it against. See docs/ssm.md, "How the fused scan works".
#pragma once
#include "core/tensor.h"

namespace tg::nn::functional {

// For every batch b and channel e, with a state h [N] starting at zero:
//   h_t = exp(delta_t A) * h_{t-1} + delta_t u_t B_t      (A discretised by zero-order hold, B by Euler, as the
//   y_t = <C_t, h_t> + D u_t                               reference implementation does)
// u, delta [Bt, L, E]; A [E, N] (negative for a stable system); B, C [Bt, L, N] (shared by the channels, as in
// Mamba); D [E] or undefined (no skip). Returns y [Bt, L, E]. One tape node; neither forward nor backward stores
// the [Bt, L, E, N] states: backward recomputes them one (batch, channel) at a time.
Tensor selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      const Tensor& D = {});

// The same recurrence written with tensor ops over time (one [Bt, E, N] state per step, differentiated by the
// tape): slow and memory-hungry, kept as the reference for tests.
Tensor selective_scan_ref(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                          const Tensor& D = {});

}  // namespace tg::nn::functional
