// Parity of scaled_dot_product_attention and MultiheadAttention with PyTorch: tests/make_fixtures.py
// (attention_fixtures) stores, per case, the inputs (and the MultiheadAttention parameters under their state_dict
// names, prefixed "param."), the output and the gradients of (out * w).sum(). MultiheadAttention loads them with a strict
// load_state_dict, which checks its parameter names against torch.nn.MultiheadAttention's.
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "parity.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;
using namespace tg_test;

namespace {

Tensor opt(const Inputs& in, const std::string& k) { return in.count(k) ? in.at(k) : Tensor(); }

// Runs the module on the case and returns its output; `grads` maps fixture gradient names to tensors.
Tensor mha(nn::MultiheadAttention& m, const Inputs& in, std::map<std::string, Tensor>& grads) {
  m.to(tg::kFloat64);
  std::map<std::string, Tensor> state;
  for (auto& [k, t] : in)
    if (k.rfind("param.", 0) == 0) state[k.substr(6)] = t;
  m.load_state_dict(state);
  for (auto& [k, p] : m.named_parameters()) grads["param." + k] = p;
  for (const char* k : {"query", "key", "value"}) grads[k] = in.at(k);
  return m.forward(in.at("query"), in.at("key"), in.at("value"), opt(in, "key_padding_mask"), opt(in, "attn_mask"));
}

}  // namespace

TEST_CASE("attention parity: scaled_dot_product_attention and MultiheadAttention against PyTorch") {
  auto cases = load_cases(kFixtures + "/attention.safetensors");
  REQUIRE(cases.size() == 7);
  for (auto& [name, c] : cases) {
    INFO("attention/", name);
    for (auto& [k, t] : c.inputs)
      if (t.is_floating_point() && k != "mask" && k != "attn_mask") t.requires_grad_();
    const Inputs& in = c.inputs;
    std::map<std::string, Tensor> grads;
    Tensor out;
    if (name.rfind("sdpa", 0) == 0) {
      for (const char* k : {"q", "k", "v"}) grads[k] = in.at(k);
      out = F::scaled_dot_product_attention(in.at("q"), in.at("k"), in.at("v"), opt(in, "mask"), 0.0,
                                            name == "sdpa_causal",
                                            name == "sdpa_float_mask" ? std::optional<double>(0.3) : std::nullopt);
    } else if (name == "mha_self") {
      nn::MultiheadAttention m(8, 2);
      out = mha(m, in, grads);
    } else if (name == "mha_cross_batch_first") {
      nn::MultiheadAttention m(6, 3, 0.0, true, /*batch_first=*/true);
      out = mha(m, in, grads);
    } else if (name == "mha_nobias_float_mask") {
      nn::MultiheadAttention m(4, 1, 0.0, /*bias=*/false);
      out = mha(m, in, grads);
    } else {
      FAIL_CHECK("no tapegrad function for fixture case ", name);
      continue;
    }
    std::string summary;
    compare("out", out, c.outs.at(0), summary);
    (out * c.w).sum().backward();
    for (auto& [g, want] : c.grads) {
      INFO("gradient of ", g);
      REQUIRE(grads.count(g));
      compare("grad." + g, grads.at(g).grad(), want, summary);
    }
    MESSAGE("attention/", name, ":", summary);
  }
}
