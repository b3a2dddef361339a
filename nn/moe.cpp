// The MoE layer: routing (top-k or dense-to-sparse gates, capacity, token dropping) as integer bookkeeping over
// the gate values, then a differentiable dispatch (index_select, one expert MLP per contiguous block of tokens,
// index_add weighted by the gates) and the auxiliary losses. Tested in tests/test_nn_moe.cpp.
#include "nn/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "nn/init.h"

namespace tg::nn {

namespace functional {

Tensor load_balancing_loss(const Tensor& probs, const Tensor& assignments) {
  TG_CHECK(probs.defined() && probs.dim() == 2 && probs.is_floating_point(),
           "load_balancing_loss: probs must be floating [N, E], got {}", probs.defined() ? shape_str(probs.sizes()) : "undefined");
  TG_CHECK(assignments.defined() && assignments.dtype() == kInt64 && assignments.dim() == 2 &&
               assignments.size(0) == probs.size(0),
           "load_balancing_loss: assignments must be int64 [N, k] with N = {}, got {} {}", probs.size(0),
           assignments.defined() ? dtype_name(assignments.dtype()) : "undefined",
           assignments.defined() ? shape_str(assignments.sizes()) : "");
  const int64_t E = probs.size(1);
  std::vector<double> f(E, 0.0);
  double total = 0;
  for (int64_t e : assignments.to_vector<int64_t>()) {
    if (e < 0) continue;
    TG_CHECK(e < E, "load_balancing_loss: expert index {} out of range for {} experts", e, E);
    f[e] += 1;
    total += 1;
  }
  if (total > 0)
    for (double& v : f) v /= total;
  // f counts discrete choices, so only P = mean(probs) carries a gradient (Switch Transformer, eq. 4).
  Tensor ft = tensor(f, {E}).to(probs.dtype());
  return mul(sum(mul(ft, mean(probs, {0}))), static_cast<double>(E));
}

Tensor router_z_loss(const Tensor& logits) {
  TG_CHECK(logits.defined() && logits.dim() == 2 && logits.is_floating_point(),
           "router_z_loss: logits must be floating [N, E], got {}", logits.defined() ? shape_str(logits.sizes()) : "undefined");
  return mean(square(logsumexp(logits, {1})));
}

double dts_temperature(int64_t step, int64_t total_steps, double tau_start, double tau_end) {
  TG_CHECK(tau_start > 0 && tau_end > 0, "dts_temperature: temperatures must be > 0, got {} and {}", tau_start, tau_end);
  if (total_steps <= 0 || step >= total_steps) return tau_end;
  double frac = static_cast<double>(std::max<int64_t>(step, 0)) / static_cast<double>(total_steps);
  return tau_start * std::pow(tau_end / tau_start, frac);
}

}  // namespace functional

namespace {

std::shared_ptr<UnaryModule> make_activation(const std::string& name) {
  if (name == "gelu") return std::make_shared<GELU>();
  if (name == "relu") return std::make_shared<ReLU>();
  if (name == "silu") return std::make_shared<SiLU>();
  TG_ERROR("MoE: activation must be \"gelu\", \"relu\" or \"silu\", got \"{}\"", name);
}

}  // namespace

MoE::MoE(const MoEOptions& o, TensorOptions opt) : options(o) {
  TG_CHECK(o.d_model > 0 && o.d_hidden > 0 && o.n_experts > 0,
           "MoE: d_model, d_hidden and n_experts must be > 0, got {}, {}, {}", o.d_model, o.d_hidden, o.n_experts);
  TG_CHECK(o.top_k >= 1 && o.top_k <= o.n_experts, "MoE: top_k must be in [1, n_experts = {}], got {}", o.n_experts,
           o.top_k);
  TG_CHECK(o.dts_threshold >= 0 && o.dts_threshold < 1, "MoE: dts_threshold must be in [0, 1), got {}",
           o.dts_threshold);
  router = register_module("router", std::make_shared<Linear>(o.d_model, o.n_experts, false, opt));
  // Switch Transformer's init: (truncated) normal with std sqrt(0.1 / fan_in), so routing starts near uniform.
  init::normal_(router->weight, 0.0, std::sqrt(0.1 / static_cast<double>(o.d_model)));
  experts = register_module("experts", std::make_shared<ModuleList>());
  for (int64_t e = 0; e < o.n_experts; ++e)
    experts->push_back(std::make_shared<Sequential>(std::make_shared<Linear>(o.d_model, o.d_hidden, o.expert_bias, opt),
                                                    make_activation(o.activation),
                                                    std::make_shared<Linear>(o.d_hidden, o.d_model, o.expert_bias, opt)));
}

Tensor MoE::forward(const Tensor& x) {
  TG_CHECK(x.defined() && x.is_floating_point() && x.dim() >= 1 && x.size(-1) == options.d_model,
           "MoE: input must be floating [..., d_model = {}], got {} {}", options.d_model,
           x.defined() ? dtype_name(x.dtype()) : "undefined", x.defined() ? shape_str(x.sizes()) : "");
  const int64_t C = options.d_model, E = options.n_experts, K = options.top_k;
  const Tensor xf = x.reshape({-1, C});
  const int64_t N = xf.size(0);
  if (N == 0) {  // nothing to route: an empty output, zero losses
    aux_loss_ = zeros({}, TensorOptions(x.dtype()));
    z_loss_ = zeros({}, TensorOptions(x.dtype()));
    stats_ = RouterStats{};
    stats_.assigned_per_expert.assign(E, 0);
    stats_.tokens_per_expert.assign(E, 0);
    return mul(x, 0.0);
  }

  const Tensor logits = router->forward(xf);  // [N, E]
  const Tensor probs = softmax(logits, 1);
  const bool dts = is_training() && gate_temperature_ > 0;
  Tensor gate_src = probs;  // the distribution the gate values are read from
  if (dts) {
    Tensor noisy = logits;
    if (options.dts_gumbel_noise) {
      NoGradGuard g;
      Tensor u = clamp(rand({N, E}, TensorOptions(x.dtype())), 1e-10, 1.0 - 1e-10);
      noisy = add(logits, neg(log(neg(log(u)))));
    }
    gate_src = softmax(div(noisy, gate_temperature_), 1);
  }

  // ---- routing: which experts each token asks for (slot 0 the best), as integer bookkeeping over the values.
  const std::vector<double> gv = gate_src.detach().to(kFloat64).to_vector<double>();
  std::vector<std::vector<int64_t>> chosen(N);
  std::vector<int64_t> order(E);
  int64_t k_max = 0, n_assigned = 0;
  for (int64_t n = 0; n < N; ++n) {
    const double* row = gv.data() + n * E;
    std::iota(order.begin(), order.end(), 0);
    // Ties go to the lower expert index, so routing is deterministic.
    std::stable_sort(order.begin(), order.end(), [row](int64_t a, int64_t b) { return row[a] > row[b]; });
    int64_t k = K;
    if (dts)
      while (k < E && row[order[k]] > options.dts_threshold) ++k;
    chosen[n].assign(order.begin(), order.begin() + k);
    k_max = std::max(k_max, k);
    n_assigned += k;
  }
  // Capacity counts k slots per token: the adaptive k of the DTS gate is its mean, rounded up (as fastmoe's gate).
  const double mean_k = N ? static_cast<double>(n_assigned) / static_cast<double>(N) : static_cast<double>(K);
  const double k_cap = dts ? std::max<double>(K, std::ceil(mean_k)) : static_cast<double>(K);
  const double cf = is_training() ? options.capacity_factor : options.eval_capacity_factor;
  const int64_t capacity =
      cf > 0 ? static_cast<int64_t>(std::ceil(cf * k_cap * static_cast<double>(N) / static_cast<double>(E))) : N;

  // Slot-major priority (GShard): every token's first choice is served before any token's second choice.
  std::vector<int64_t> asked(N * k_max, -1), kept(N * k_max, -1), load(E, 0), assigned(E, 0);
  for (int64_t n = 0; n < N; ++n)
    for (size_t j = 0; j < chosen[n].size(); ++j) asked[n * k_max + j] = chosen[n][j];
  for (int64_t j = 0; j < k_max; ++j)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t e = asked[n * k_max + j];
      if (e < 0) continue;
      ++assigned[e];
      if (load[e] < capacity) {
        ++load[e];
        kept[n * k_max + j] = e;
      }
    }

  // ---- gates [N, k_max]: the chosen probabilities, renormalised over the asked-for experts for top-k > 1 (before
  // capacity, so a dropped choice does not inflate the kept one), zero where dropped.
  const TensorOptions fopt(x.dtype());
  Tensor asked_t = tensor(asked, {N, k_max});
  Tensor asked_mask = ge(asked_t, 0.0).to(x.dtype()), kept_mask = ge(tensor(kept, {N, k_max}), 0.0).to(x.dtype());
  Tensor sel = mul(gather(gate_src, 1, clamp_min(asked_t, 0.0)), asked_mask);
  if (K > 1 && !dts) sel = div(sel, sum(sel, {1}, true));
  const Tensor gates = mul(sel, kept_mask);

  // ---- dispatch: the kept (token, slot) pairs grouped by expert, one gather, one MLP per expert, one scatter-add.
  std::vector<int64_t> tok_idx, gate_idx, offsets(E + 1, 0);
  tok_idx.reserve(N * k_max);
  gate_idx.reserve(N * k_max);
  {
    std::vector<std::vector<int64_t>> per(E);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < k_max; ++j)
        if (kept[n * k_max + j] >= 0) per[kept[n * k_max + j]].push_back(n * k_max + j);
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t p : per[e]) {
        tok_idx.push_back(p / k_max);
        gate_idx.push_back(p);
      }
      offsets[e + 1] = static_cast<int64_t>(tok_idx.size());
    }
  }
  const int64_t M = static_cast<int64_t>(tok_idx.size());
  Tensor yf;
  if (M == 0) {
    yf = mul(xf, 0.0);  // every assignment dropped: a zero output that still belongs to the graph
  } else {
    Tensor tok_t = tensor(tok_idx, {M});
    Tensor xs = index_select(xf, 0, tok_t);
    std::vector<Tensor> outs;
    for (int64_t e = 0; e < E; ++e) {
      const int64_t cnt = offsets[e + 1] - offsets[e];
      if (cnt == 0) continue;
      outs.push_back(experts->at<Sequential>(e)->forward(narrow(xs, 0, offsets[e], cnt)));
    }
    Tensor hs = outs.size() == 1 ? outs[0] : cat(outs, 0);
    Tensor gs = index_select(gates.reshape({-1}), 0, tensor(gate_idx, {M}));
    yf = index_add(zeros({N, C}, fopt), 0, tok_t, mul(hs, gs.unsqueeze(1)));
  }

  aux_loss_ = functional::load_balancing_loss(probs, asked_t);
  z_loss_ = functional::router_z_loss(logits);
  {
    NoGradGuard g;
    routes_ = tensor(kept, {N, k_max});
    gates_ = gates.detach();
  }
  stats_.tokens = N;
  stats_.capacity = capacity;
  stats_.assigned_per_expert = assigned;
  stats_.tokens_per_expert = load;
  stats_.dropped_fraction = n_assigned ? static_cast<double>(n_assigned - M) / static_cast<double>(n_assigned) : 0.0;
  stats_.mean_experts_per_token = mean_k;
  return yf.reshape(x.sizes());
}

}  // namespace tg::nn
