// Gradient noise with its own seeded generator, and Generator state as tensors.
#include "optim/grad_noise.h"

#include <bit>
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "optim/optimizer.h"

namespace tg::optim {

void add_gradient_noise(const std::vector<Tensor>& params, double variance, Generator& gen) {
  TG_CHECK(variance >= 0 && std::isfinite(variance), "add_gradient_noise: invalid variance {}", variance);
  const double sd = std::sqrt(variance);
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    // Noise is drawn serially in double into a contiguous buffer of the gradient's dtype, then added.
    Tensor noise = empty(g.sizes(), g.options().requires_grad(false));
    dispatch_floating(g.dtype(), "add_gradient_noise", [&]<class T>() {
      T* d = noise.data<T>();
      for (int64_t i = 0; i < noise.numel(); ++i) d[i] = static_cast<T>(sd * gen.normal());
    });
    g.add_(noise);
  }
}

GradientNoise::GradientNoise(double eta, double gamma, uint64_t seed) : eta_(eta), gamma_(gamma), gen_(seed) {
  TG_CHECK(eta >= 0 && std::isfinite(eta), "GradientNoise: eta must be finite and >= 0, got {}", eta);
  TG_CHECK(std::isfinite(gamma), "GradientNoise: gamma must be finite, got {}", gamma);
}

double GradientNoise::variance(int64_t t) const { return eta_ / std::pow(1.0 + static_cast<double>(t), gamma_); }
double GradientNoise::stddev(int64_t t) const { return std::sqrt(variance(t)); }

void GradientNoise::apply(const std::vector<Tensor>& params) {
  add_gradient_noise(params, variance(t_), gen_);
  ++t_;
}

void GradientNoise::apply(const Optimizer& opt) { apply(opt.parameters()); }

void generator_to_tensors(const Generator& gen, const std::string& prefix, std::map<std::string, Tensor>& out) {
  Generator::State st = gen.get_state();
  Tensor words = empty({4}, kInt64);
  for (int i = 0; i < 4; ++i) words.data<int64_t>()[i] = std::bit_cast<int64_t>(st.s[i]);
  out[prefix + "state"] = words;
  out[prefix + "has_spare"] = tensor<int64_t>({st.has_spare ? 1 : 0}).reshape({});
  out[prefix + "spare"] = scalar_tensor(st.spare, kFloat64);
}

void generator_from_tensors(Generator& gen, const std::string& prefix, const std::map<std::string, Tensor>& in,
                            const std::string& what) {
  auto get = [&](const std::string& key, DType dt, int64_t numel) -> const Tensor& {
    auto it = in.find(prefix + key);
    TG_CHECK(it != in.end(), "{}: missing entry '{}{}'", what, prefix, key);
    const Tensor& t = it->second;
    TG_CHECK(t.defined() && t.dtype() == dt && t.numel() == numel, "{}: entry '{}{}' must be {} with {} element(s), "
             "got {} {}", what, prefix, key, dtype_name(dt), numel, t.defined() ? dtype_name(t.dtype()) : "undefined",
             t.defined() ? shape_str(t.sizes()) : "");
    return t;
  };
  Generator::State st{};
  std::vector<int64_t> words = get("state", kInt64, 4).to_vector<int64_t>();
  for (int i = 0; i < 4; ++i) st.s[i] = std::bit_cast<uint64_t>(words[i]);
  TG_CHECK(st.s[0] | st.s[1] | st.s[2] | st.s[3], "{}: entry '{}state' is all zeros, which is not a valid "
           "generator state", what, prefix);
  st.has_spare = get("has_spare", kInt64, 1).item<int64_t>() != 0;
  st.spare = get("spare", kFloat64, 1).item<double>();
  gen.set_state(st);
}

std::map<std::string, Tensor> GradientNoise::state_dict() const {
  std::map<std::string, Tensor> d;
  d["t"] = tensor<int64_t>({t_}).reshape({});
  d["eta"] = scalar_tensor(eta_, kFloat64);
  d["gamma"] = scalar_tensor(gamma_, kFloat64);
  generator_to_tensors(gen_, "rng.", d);
  return d;
}

void GradientNoise::load_state_dict(const std::map<std::string, Tensor>& dict) {
  const char* op = "GradientNoise::load_state_dict";
  for (const auto& [k, v] : dict)
    TG_CHECK(k == "t" || k == "eta" || k == "gamma" || k.rfind("rng.", 0) == 0, "{}: unexpected entry '{}'", op, k);
  auto scalar = [&](const char* key, DType dt) -> const Tensor& {
    auto it = dict.find(key);
    TG_CHECK(it != dict.end(), "{}: missing entry '{}'", op, key);
    TG_CHECK(it->second.defined() && it->second.numel() == 1 && it->second.dtype() == dt,
             "{}: entry '{}' must be one {} value", op, key, dtype_name(dt));
    return it->second;
  };
  int64_t t = scalar("t", kInt64).item<int64_t>();
  double eta = scalar("eta", kFloat64).item<double>(), gamma = scalar("gamma", kFloat64).item<double>();
  TG_CHECK(t >= 0, "{}: entry 't' is negative ({})", op, t);
  Generator gen = gen_;
  generator_from_tensors(gen, "rng.", dict, op);
  t_ = t;
  eta_ = eta;
  gamma_ = gamma;
  gen_ = gen;
}

}  // namespace tg::optim
