// Parity of the nn layers and losses with PyTorch: tests/make_fixtures.py (nn_fixtures) stores, per case, the
// inputs, PyTorch module parameters under their state_dict names, the output, and the gradients of (out * w).sum().
// Layer cases build the tapegrad module, cast it to float64 and load the parameters with a strict load_state_dict,
// so the parameter names are checked against PyTorch's too.
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

struct Result {
  Tensor out;
  std::map<std::string, Tensor> grad_of;  // fixture gradient name -> the tensor whose .grad() it is
};
using NnFn = std::function<Result(const Inputs&)>;

template <class M> NnFn module(std::function<std::shared_ptr<M>()> make) {
  return [make](const Inputs& in) {
    auto m = make();
    m->to(tg::kFloat64);
    std::map<std::string, Tensor> state(in.begin(), in.end());
    state.erase("input");
    m->load_state_dict(state);
    Result r{m->forward(in.at("input")), {{"input", in.at("input")}}};
    for (auto& [k, p] : m->named_parameters()) r.grad_of[k] = p;
    return r;
  };
}

NnFn functional(std::function<Tensor(const Inputs&)> f) {
  return [f](const Inputs& in) { return Result{f(in), in}; };
}

void run(const std::map<std::string, NnFn>& table) {
  auto cases = load_cases(kFixtures + "/nn.safetensors");
  CHECK(!cases.empty());
  std::set<std::string> used;
  for (auto& [name, c] : cases) {
    std::string key = table.count(name) ? name : name.substr(0, name.find('@'));
    auto it = table.find(key);
    CHECK_MESSAGE(it != table.end(), "no tapegrad function for fixture case nn/", name);
    if (it == table.end()) continue;
    used.insert(key);
    std::string summary;
    try {
      INFO("nn/", name);
      for (auto& [in, t] : c.inputs)
        if (t.is_floating_point()) t.requires_grad_();
      Result r = it->second(c.inputs);
      compare("out", r.out, c.outs.at(0), summary);
      if (c.w.defined()) {
        (r.out * c.w).sum().backward();
        for (auto& [g, want] : c.grads) {
          INFO("gradient of ", g);
          REQUIRE(r.grad_of.count(g));
          compare("grad." + g, r.grad_of.at(g).grad(), want, summary);
        }
      }
    } catch (const std::exception& e) {
      FAIL_CHECK("nn/", name, " threw: ", e.what());
      continue;
    }
    MESSAGE("nn/", name, ":", summary);
  }
  for (const auto& [key, fn] : table) CHECK_MESSAGE(used.count(key), "no fixture case for table entry ", key);
}

}  // namespace

TEST_SUITE("nn") {

TEST_CASE("nn parity: layers and losses against PyTorch") {
  std::map<std::string, NnFn> t;
  t["linear"] = module<nn::Linear>([] { return std::make_shared<nn::Linear>(4, 5); });
  t["linear_nobias"] = module<nn::Linear>([] { return std::make_shared<nn::Linear>(4, 2, false); });
  t["mlp"] = module<nn::Sequential>([] {
    return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 6), std::make_shared<nn::ReLU>(),
                                            std::make_shared<nn::Linear>(6, 3));
  });
  t["embedding"] = module<nn::Embedding>([] { return std::make_shared<nn::Embedding>(6, 3); });
  t["embedding_pad"] = module<nn::Embedding>([] { return std::make_shared<nn::Embedding>(6, 3, 1); });
  t["layer_norm"] = module<nn::LayerNorm>([] { return std::make_shared<nn::LayerNorm>(tg::Shape{5}); });
  t["layer_norm_2d"] = module<nn::LayerNorm>([] { return std::make_shared<nn::LayerNorm>(tg::Shape{3, 5}, 1e-3); });
  t["conv1d"] = module<nn::Conv1d>([] {
    return std::make_shared<nn::Conv1d>(nn::Conv1dOptions{.in_channels = 4, .out_channels = 6, .kernel_size = 3,
                                                          .padding = 1});
  });
  t["conv1d_strided"] = module<nn::Conv1d>([] {
    return std::make_shared<nn::Conv1d>(nn::Conv1dOptions{.in_channels = 4, .out_channels = 3, .kernel_size = 3,
                                                          .stride = 2, .padding = 2, .dilation = 2});
  });
  t["conv1d_groups"] = module<nn::Conv1d>([] {
    return std::make_shared<nn::Conv1d>(
        nn::Conv1dOptions{.in_channels = 4, .out_channels = 6, .kernel_size = 3, .groups = 2});
  });
  t["conv1d_unbatched"] = module<nn::Conv1d>([] {
    return std::make_shared<nn::Conv1d>(
        nn::Conv1dOptions{.in_channels = 3, .out_channels = 2, .kernel_size = 2, .bias = false});
  });
  t["conv1d_causal_depthwise"] = functional([](const Inputs& in) {
    return F::causal_conv1d(in.at("x"), in.at("weight"), in.at("bias"), 1, 4);
  });
  t["rms_norm"] = functional([](const Inputs& in) { return F::rms_norm(in.at("x"), {6}, in.at("weight"), 1e-6); });
  t["rms_norm@eps_default"] = functional([](const Inputs& in) { return F::rms_norm(in.at("x"), {4}, in.at("weight")); });
  for (std::string red : {"mean", "sum", "none"}) {
    t["cross_entropy_" + red] =
        functional([red](const Inputs& in) { return F::cross_entropy(in.at("x"), in.at("t"), -100, 0.0, red); });
    t["cross_entropy_smooth_" + red] =
        functional([red](const Inputs& in) { return F::cross_entropy(in.at("x"), in.at("t"), -100, 0.1, red); });
    t["mse_loss_" + red] = functional([red](const Inputs& in) { return F::mse_loss(in.at("a"), in.at("b"), red); });
  }
  t["cross_entropy_ignore2"] =
      functional([](const Inputs& in) { return F::cross_entropy(in.at("x"), in.at("t"), 2, 0.25); });
  t["cross_entropy_kdim"] =
      functional([](const Inputs& in) { return F::cross_entropy(in.at("x"), in.at("t"), -100, 0.1); });
  t["cross_entropy_unbatched"] = functional([](const Inputs& in) { return F::cross_entropy(in.at("x"), in.at("t")); });
  for (std::string red : {"mean", "none"})
    t["nll_loss_" + red] = functional([red](const Inputs& in) { return F::nll_loss(in.at("x"), in.at("t"), -100, red); });
  t["bce_logits"] =
      functional([](const Inputs& in) { return F::binary_cross_entropy_with_logits(in.at("x"), in.at("y")); });
  t["bce_logits_weights"] = functional([](const Inputs& in) {
    return F::binary_cross_entropy_with_logits(in.at("x"), in.at("y"), in.at("weight"), in.at("pos_weight"), "sum");
  });
  run(t);
}

}  // TEST_SUITE("nn")
