// Parity of linear attention, GLA and Aaren with PyTorch references written from the papers' step equations
// (tests/make_fixtures.py, linear_attention_fixtures): outputs and input gradients of both tapegrad forms.
#include <doctest/doctest.h>

#include <string>

#include "nn/aaren.h"
#include "nn/gla.h"
#include "nn/linear_attention.h"
#include "parity.h"
#include "tapegrad.h"

using tg::Tensor;
namespace F = tg::nn::functional;
using namespace tg_test;

namespace {

// Runs fn on fresh leaves of the case's inputs and compares the output and every input gradient.
void check_case(const Case& c, const std::vector<std::string>& names,
                const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::string& what) {
  std::vector<Tensor> xs;
  for (auto& n : names) xs.push_back(c.inputs.at(n).clone().requires_grad_());
  Tensor out = fn(xs);
  std::string summary;
  compare("out", out, c.outs.at(0), summary);
  auto gs = tg::autograd::grad({tg::sum(out * c.w)}, xs);
  for (size_t i = 0; i < names.size(); ++i) compare("grad." + names[i], gs[i], c.grads.at(names[i]), summary);
  MESSAGE(what, ":", summary);
}

}  // namespace

TEST_SUITE("linear_attention") {

TEST_CASE("linear attention family: parity with the PyTorch step equations") {
  auto cases = load_cases(kFixtures + "/linear_attention.safetensors");
  REQUIRE(cases.size() == 3);
  for (int64_t chunk : {0, 3}) {  // 0: the recurrent form
    std::string form = chunk ? "chunked" : "recurrent";
    check_case(cases.at("la"), {"q", "k", "v"}, [chunk](const std::vector<Tensor>& a) {
      Tensor q = F::elu_feature_map(a[0]), k = F::elu_feature_map(a[1]);
      return chunk ? F::linear_attention_chunked(q, k, a[2], chunk) : F::linear_attention_recurrent(q, k, a[2]);
    }, "la " + form);
    check_case(cases.at("gla"), {"q", "k", "v", "g", "s0"}, [chunk](const std::vector<Tensor>& a) {
      Tensor la = -tg::softplus(-a[3]) / 16.0;
      auto [o, S] = chunk ? F::gla_chunked(a[0], a[1], a[2], la, chunk, std::nullopt, a[4])
                          : F::gla_recurrent(a[0], a[1], a[2], la, std::nullopt, a[4]);
      return tg::cat({o.reshape({-1}), S.reshape({-1})});
    }, "gla " + form);
    check_case(cases.at("aaren"), {"s", "v"}, [chunk](const std::vector<Tensor>& a) {
      return chunk ? F::aaren_scan(a[0], a[1]) : F::aaren_sequential(a[0], a[1]);
    }, chunk ? "aaren scan" : "aaren sequential");
  }
}

}  // TEST_SUITE
