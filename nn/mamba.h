// Mamba (Gu and Dao 2023): the selective-SSM block (mamba_ssm's Mamba "mixer"), the residual MambaLM built from
// it, and their recurrent step API for generation. The sequence path runs the fused selective scan
// (nn/selective_scan.h); the step path updates a conv cache and an SSM state per block with tensor ops, and gives
// the same outputs as the sequence path (tests/test_ssm_mamba.cpp). See docs/ssm.md.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/module.h"

namespace tg::nn {

struct MambaOptions {
  int64_t d_model = 0;
  int64_t d_state = 16;   // N
  int64_t d_conv = 4;     // the causal depthwise convolution's kernel
  int64_t expand = 2;     // d_inner = expand * d_model
  int64_t dt_rank = 0;    // 0: ceil(d_model / 16)
  double dt_min = 0.001, dt_max = 0.1;  // the initial step sizes are log-uniform in [dt_min, dt_max]
};

// What one block carries between step() calls: the last d_conv - 1 inputs of the convolution and the SSM state.
struct MambaState {
  Tensor conv;  // [B, d_inner, d_conv - 1]
  Tensor ssm;   // [B, d_inner, d_state]
};

// The block: x [B, L, d_model] -> in_proj -> (x, z); x -> causal depthwise conv1d -> SiLU -> x_proj -> (dt, B, C);
// delta = softplus(dt_proj(dt)); y = selective_scan(x, delta, A = -exp(A_log), B, C, D); out_proj(y * SiLU(z)).
// Parameters and their initialisation as mamba_ssm: A_log = log(1..N) per channel (S4D-Real), D = 1, dt_proj's
// bias the inverse softplus of a log-uniform step.
class Mamba : public UnaryModule {
 public:
  explicit Mamba(const MambaOptions& options, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  // One time step: x_t [B, d_model] -> [B, d_model], updating state (from initial_state(B) at t = 0).
  Tensor step(const Tensor& x_t, MambaState& state);
  MambaState initial_state(int64_t batch) const;
  std::string name() const override { return "Mamba"; }

  MambaOptions options;
  int64_t d_inner, dt_rank;
  bool fused_scan = true;  // false runs the composed reference scan (for tests)
  std::shared_ptr<Linear> in_proj, x_proj, dt_proj, out_proj;
  std::shared_ptr<Conv1d> conv1d;
  Tensor A_log, D;
};

struct MambaLMOptions {
  int64_t vocab_size = 0, d_model = 0, n_layer = 0;
  int64_t d_state = 16, d_conv = 4, expand = 2;
  std::string norm = "rmsnorm";  // or "layernorm"
  bool tie_embeddings = true;    // lm_head shares the embedding's weight
};

// x + mixer(norm(x)): one residual layer of MambaLM.
class MambaLayer : public UnaryModule {
 public:
  MambaLayer(const MambaOptions& mixer_options, const std::string& norm, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  Tensor step(const Tensor& x_t, MambaState& state);
  std::string name() const override { return "MambaLayer"; }
  std::shared_ptr<UnaryModule> norm;
  std::shared_ptr<Mamba> mixer;
};

// The language model: embedding, n_layer residual Mamba layers, a final norm and the head (tied by default).
// forward: int64 tokens [B, L] -> logits [B, L, vocab]; step: tokens [B] -> logits [B, vocab].
class MambaLM : public Module {
 public:
  explicit MambaLM(const MambaLMOptions& options, TensorOptions opt = {});
  Tensor forward(const Tensor& tokens);
  Tensor step(const Tensor& tokens, std::vector<MambaState>& states);
  std::vector<MambaState> initial_state(int64_t batch) const;
  std::string name() const override { return "MambaLM"; }

  MambaLMOptions options;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<UnaryModule> norm_f;
  std::shared_ptr<Linear> lm_head;
};

}  // namespace tg::nn
