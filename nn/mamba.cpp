// Mamba, MambaLayer and MambaLM (nn/mamba.h): the block's sequence path over the fused selective scan, and the
// step path that equals it one token at a time.
#include "nn/mamba.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "nn/init.h"
#include "nn/selective_scan.h"

namespace tg::nn {

namespace F = functional;

Mamba::Mamba(const MambaOptions& o, TensorOptions opt) : options(o) {
  TG_CHECK(o.d_model > 0 && o.d_state > 0 && o.d_conv > 0 && o.expand > 0 && o.dt_rank >= 0,
           "Mamba: d_model, d_state, d_conv and expand must be positive, got {}, {}, {}, {} (dt_rank {})", o.d_model,
           o.d_state, o.d_conv, o.expand, o.dt_rank);
  TG_CHECK(o.dt_min > 0 && o.dt_max >= o.dt_min, "Mamba: need 0 < dt_min <= dt_max, got {} and {}", o.dt_min,
           o.dt_max);
  d_inner = o.expand * o.d_model;
  dt_rank = o.dt_rank ? o.dt_rank : (o.d_model + 15) / 16;
  const int64_t E = d_inner, N = o.d_state;
  in_proj = register_module("in_proj", std::make_shared<Linear>(o.d_model, 2 * E, false, opt));
  conv1d = register_module("conv1d", std::make_shared<Conv1d>(Conv1dOptions{.in_channels = E, .out_channels = E,
                                                                            .kernel_size = o.d_conv, .groups = E,
                                                                            .causal = true},
                                                              opt));
  x_proj = register_module("x_proj", std::make_shared<Linear>(E, dt_rank + 2 * N, false, opt));
  dt_proj = register_module("dt_proj", std::make_shared<Linear>(dt_rank, E, true, opt));
  TensorOptions popt = opt.requires_grad(false);
  {
    NoGradGuard g;
    // dt_proj keeps the initial step in range: weight U(-r^-1/2, r^-1/2), bias = softplus^-1(dt) for
    // dt = exp(U(log dt_min, log dt_max)) (clamped at 1e-4), as mamba_ssm.
    const double std_ = 1.0 / std::sqrt(static_cast<double>(dt_rank));
    init::uniform_(dt_proj->weight, -std_, std_);
    Tensor dt = clamp_min(exp(rand({E}, popt) * (std::log(o.dt_max) - std::log(o.dt_min)) + std::log(o.dt_min)),
                          1e-4);
    dt_proj->bias.copy_(dt + log(1.0 - exp(-dt)));
  }
  // S4D-Real: A = -(1, 2, ..., N) for every channel, kept as log(-A) so that A stays negative.
  A_log = register_parameter(
      "A_log", log(arange(1.0, static_cast<double>(N) + 1, 1, popt)).unsqueeze(0).expand({E, N}).contiguous());
  D = register_parameter("D", ones({E}, popt));
  out_proj = register_module("out_proj", std::make_shared<Linear>(E, o.d_model, false, opt));
}

Tensor Mamba::forward(const Tensor& x) {
  TG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == options.d_model, "Mamba: input must be [B, L, {}], got {}",
           options.d_model, x.defined() ? shape_str(x.sizes()) : "undefined");
  const int64_t N = options.d_state;
  auto xz = in_proj->forward(x).chunk(2, 2);
  Tensor u = silu(conv1d->forward(xz[0].transpose(1, 2)).transpose(1, 2));  // [B, L, E]
  auto dbc = split(x_proj->forward(u), std::vector<int64_t>{dt_rank, N, N}, 2);
  Tensor delta = softplus(dt_proj->forward(dbc[0]));
  Tensor A = -exp(A_log);
  auto scan = fused_scan ? F::selective_scan : F::selective_scan_ref;
  Tensor y = scan(u, delta, A, dbc[1], dbc[2], D);
  return out_proj->forward(y * silu(xz[1]));
}

MambaState Mamba::initial_state(int64_t batch) const {
  TensorOptions o = TensorOptions(A_log.dtype()).device(A_log.device());
  return {zeros({batch, d_inner, options.d_conv - 1}, o), zeros({batch, d_inner, options.d_state}, o)};
}

Tensor Mamba::step(const Tensor& x_t, MambaState& s) {
  TG_CHECK(x_t.defined() && x_t.dim() == 2 && x_t.size(1) == options.d_model,
           "Mamba.step: input must be [B, {}], got {}", options.d_model,
           x_t.defined() ? shape_str(x_t.sizes()) : "undefined");
  const int64_t B = x_t.size(0), K = options.d_conv, N = options.d_state;
  TG_CHECK(s.conv.defined() && s.ssm.defined() && s.conv.sizes() == Shape({B, d_inner, K - 1}) &&
               s.ssm.sizes() == Shape({B, d_inner, N}),
           "Mamba.step: the state must come from initial_state({}) (conv [{}, {}, {}], ssm [{}, {}, {}])", B, B,
           d_inner, K - 1, B, d_inner, N);
  auto xz = in_proj->forward(x_t).chunk(2, 1);
  // The convolution over the last K inputs: the cached K - 1 and this one.
  Tensor window = cat({s.conv, xz[0].unsqueeze(2)}, 2);  // [B, E, K]
  s.conv = window.narrow(2, 1, K - 1);
  Tensor u = sum(window * conv1d->weight.squeeze(1), {2});
  if (conv1d->bias.defined()) u = u + conv1d->bias;
  u = silu(u);  // [B, E]
  auto dbc = split(x_proj->forward(u), std::vector<int64_t>{dt_rank, N, N}, 1);
  Tensor delta = softplus(dt_proj->forward(dbc[0]));              // [B, E]
  Tensor a = exp(delta.unsqueeze(2) * -exp(A_log));                // [B, E, N], zero-order hold
  s.ssm = a * s.ssm + (delta * u).unsqueeze(2) * dbc[1].unsqueeze(1);  // Euler for B
  Tensor y = sum(s.ssm * dbc[2].unsqueeze(1), {2}) + u * D;
  return out_proj->forward(y * silu(xz[1]));
}

// ---- MambaLayer
namespace {
std::shared_ptr<UnaryModule> make_norm(const std::string& kind, int64_t d, TensorOptions opt) {
  if (kind == "rmsnorm") return std::make_shared<RMSNorm>(Shape{d}, 1e-5, true, opt);
  if (kind == "layernorm") return std::make_shared<LayerNorm>(Shape{d}, 1e-5, true, true, opt);
  TG_ERROR("MambaLM: norm must be \"rmsnorm\" or \"layernorm\", got \"{}\"", kind);
}
}  // namespace

MambaLayer::MambaLayer(const MambaOptions& mo, const std::string& kind, TensorOptions opt) {
  norm = register_module("norm", make_norm(kind, mo.d_model, opt));
  mixer = register_module("mixer", std::make_shared<Mamba>(mo, opt));
}

Tensor MambaLayer::forward(const Tensor& x) { return x + mixer->forward(norm->forward(x)); }

Tensor MambaLayer::step(const Tensor& x_t, MambaState& state) {
  return x_t + mixer->step(norm->forward(x_t), state);
}

// ---- MambaLM
MambaLM::MambaLM(const MambaLMOptions& o, TensorOptions opt) : options(o) {
  TG_CHECK(o.vocab_size > 0 && o.d_model > 0 && o.n_layer >= 0,
           "MambaLM: vocab_size and d_model must be positive and n_layer >= 0, got {}, {}, {}", o.vocab_size,
           o.d_model, o.n_layer);
  embedding = register_module("embedding", std::make_shared<Embedding>(o.vocab_size, o.d_model, std::nullopt, opt));
  layers = register_module("layers", std::make_shared<ModuleList>());
  MambaOptions mo{.d_model = o.d_model, .d_state = o.d_state, .d_conv = o.d_conv, .expand = o.expand};
  for (int64_t i = 0; i < o.n_layer; ++i) {
    auto l = layers->push_back(std::make_shared<MambaLayer>(mo, o.norm, opt));
    // GPT-2's scheme, which mamba_ssm follows: the residual branch's last projection shrinks by 1/sqrt(n_layer).
    NoGradGuard g;
    l->mixer->out_proj->weight.mul_(1.0 / std::sqrt(static_cast<double>(o.n_layer)));
  }
  norm_f = register_module("norm_f", make_norm(o.norm, o.d_model, opt));
  lm_head = register_module("lm_head", std::make_shared<Linear>(o.d_model, o.vocab_size, false, opt));
  {
    NoGradGuard g;
    init::normal_(embedding->weight, 0.0, 0.02);
  }
  if (o.tie_embeddings) lm_head->weight = lm_head->set_parameter("weight", embedding->weight);
}

Tensor MambaLM::forward(const Tensor& tokens) {
  Tensor h = embedding->forward(tokens);
  for (size_t i = 0; i < layers->size(); ++i) h = layers->at<MambaLayer>(i)->forward(h);
  return lm_head->forward(norm_f->forward(h));
}

std::vector<MambaState> MambaLM::initial_state(int64_t batch) const {
  std::vector<MambaState> s;
  for (size_t i = 0; i < layers->size(); ++i) s.push_back(layers->at<MambaLayer>(i)->mixer->initial_state(batch));
  return s;
}

Tensor MambaLM::step(const Tensor& tokens, std::vector<MambaState>& states) {
  TG_CHECK(states.size() == layers->size(), "MambaLM.step: {} states for {} layers (use initial_state)",
           states.size(), layers->size());
  Tensor h = embedding->forward(tokens);
  for (size_t i = 0; i < layers->size(); ++i) h = layers->at<MambaLayer>(i)->step(h, states[i]);
  return lm_head->forward(norm_f->forward(h));
}

}  // namespace tg::nn
