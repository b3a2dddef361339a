// nn::MoE: float64 gradcheck of output, load-balancing loss and z-loss (top-1 and top-2, with tokens dropped for
// capacity); routing invariants (at most k distinct experts per token, capacity respected, slot-major priority,
// dropped tokens get exactly zero, stats match the routes); the output against a per-token loop over the routes;
// the aux and z losses against hand-computed values; the dense-to-sparse gate at high and low temperature; parity
// with a PyTorch per-token reference (tests/make_fixtures.py, moe_fixtures): output, losses and every gradient.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "nn/moe.h"
#include "parity.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {

std::shared_ptr<nn::MoE> make_moe(int64_t C, int64_t H, int64_t E, int64_t k, double cf) {
  auto m = std::make_shared<nn::MoE>(nn::MoEOptions{.d_model = C, .d_hidden = H, .n_experts = E, .top_k = k,
                                                    .capacity_factor = cf});
  m->to(tg::kFloat64);
  // A router this small starts almost uniform; larger weights make the choices clear of ties for finite differences.
  {
    tg::NoGradGuard g;
    m->router->weight.mul_(20.0);
  }
  return m;
}

// y_n = sum_j gate[n, j] * expert_{route[n, j]}(x_n), one token at a time.
Tensor loop_reference(nn::MoE& m, const Tensor& x) {
  tg::NoGradGuard g;
  Tensor xf = x.reshape({-1, m.options.d_model});
  auto routes = m.routes().to_vector<int64_t>();
  auto gates = m.gates().to_vector<double>();
  const int64_t N = xf.size(0), K = m.routes().size(1);
  std::vector<Tensor> rows;
  for (int64_t n = 0; n < N; ++n) {
    Tensor row = tg::zeros({m.options.d_model}, tg::kFloat64);
    for (int64_t j = 0; j < K; ++j) {
      int64_t e = routes[n * K + j];
      if (e < 0) continue;
      row = row + m.experts->at<nn::Sequential>(e)->forward(xf.narrow(0, n, 1)).reshape({-1}) * gates[n * K + j];
    }
    rows.push_back(row);
  }
  return tg::stack(rows).reshape(x.sizes());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a - b)).item<double>();
}

}  // namespace

TEST_SUITE("moe") {

TEST_CASE("MoE: gradcheck of output, aux loss and z-loss, top-1 and top-2, with dropped tokens") {
  for (int64_t k : {1, 2}) {
    INFO("top_k ", k);
    tg::manual_seed(60 + k);
    auto m = make_moe(3, 4, 3, k, 0.6);
    Tensor x = tg::randn({2, 4, 3}, tg::kFloat64).requires_grad_();
    std::vector<Tensor> inputs{x};
    for (auto& p : m->parameters()) inputs.push_back(p);
    m->forward(x);
    CHECK(m->stats().dropped_fraction > 0);  // the capacity bites, so dropping is inside the check
    auto fn = [&](const std::vector<Tensor>& v) {
      Tensor y = m->forward(v[0]);
      return tg::cat({y.reshape({-1}), m->aux_loss().reshape({1}), m->z_loss().reshape({1})});
    };
    std::string report;
    CHECK_MESSAGE(tg::gradcheck(fn, inputs, {}, &report), report);
  }
}

TEST_CASE("MoE: routing invariants, capacity, slot priority, stats, and the per-token reference") {
  for (int64_t k : {1, 2})
    for (double cf : {0.5, 1.0, 0.0}) {
      INFO("top_k ", k, " capacity_factor ", cf);
      tg::manual_seed(70);
      const int64_t E = 4, N = 40;
      auto m = make_moe(5, 6, E, k, cf);
      Tensor x = tg::randn({4, 10, 5}, tg::kFloat64);
      Tensor y = m->forward(x);
      CHECK(y.sizes() == x.sizes());
      const auto& st = m->stats();
      const int64_t cap = cf > 0 ? static_cast<int64_t>(std::ceil(cf * k * N / E)) : N;
      CHECK(st.capacity == cap);
      CHECK(st.tokens == N);
      REQUIRE(m->routes().sizes() == tg::Shape{N, k});
      auto routes = m->routes().to_vector<int64_t>();
      auto gates = m->gates().to_vector<double>();
      Tensor probs = tg::softmax(m->router->forward(x.reshape({-1, 5})), 1).detach();
      auto pv = probs.to_vector<double>();
      std::vector<int64_t> count(E, 0);
      int64_t kept = 0;
      for (int64_t n = 0; n < N; ++n) {
        std::set<int64_t> seen;
        double gsum = 0;
        bool all_dropped = true;
        for (int64_t j = 0; j < k; ++j) {
          int64_t e = routes[n * k + j];
          if (e < 0) {
            CHECK(gates[n * k + j] == 0.0);
            continue;
          }
          all_dropped = false;
          CHECK(seen.insert(e).second);
          ++count[e];
          ++kept;
          gsum += gates[n * k + j];
          if (k == 1) {  // Switch: the gate is the top probability itself
            double top = 0;
            for (int64_t i = 0; i < E; ++i) top = std::max(top, pv[n * E + i]);
            CHECK(gates[n] == doctest::Approx(top).epsilon(1e-12));
          }
        }
        if (k == 2 && seen.size() == 2) CHECK(gsum == doctest::Approx(1.0).epsilon(1e-12));
        if (all_dropped) CHECK(tg::max(tg::abs(y.reshape({-1, 5}).select(0, n))).item<double>() == 0.0);
      }
      for (int64_t e = 0; e < E; ++e) {
        CHECK(count[e] <= cap);
        CHECK(count[e] == st.tokens_per_expert[e]);
        CHECK(st.tokens_per_expert[e] == std::min(cap, st.assigned_per_expert[e]));
      }
      int64_t asked = 0;
      for (int64_t a : st.assigned_per_expert) asked += a;
      CHECK(asked == N * k);
      CHECK(st.dropped_fraction == doctest::Approx(1.0 - static_cast<double>(kept) / (N * k)).epsilon(1e-12));
      if (cf == 0.0) CHECK(st.dropped_fraction == 0.0);
      if (cf == 0.5) CHECK(st.dropped_fraction > 0.0);
      // Slot-major priority: an expert that refused a first choice accepted no second choice.
      if (k == 2) {
        Tensor logits = m->router->forward(x.reshape({-1, 5})).detach();
        auto [top1v, top1] = tg::max(logits, 1);
        auto t1 = top1.to_vector<int64_t>();
        for (int64_t e = 0; e < E; ++e) {
          bool refused_first = false, kept_second = false;
          for (int64_t n = 0; n < N; ++n) {
            if (t1[n] == e && routes[n * k] != e) refused_first = true;
            if (routes[n * k + 1] == e) kept_second = true;
          }
          CHECK_FALSE((refused_first && kept_second));
        }
      }
      CHECK(max_abs_diff(y, loop_reference(*m, x)) < 1e-12);
    }
}

TEST_CASE("MoE: load-balancing loss and z-loss equal their formulas on a hand-computed case") {
  auto m = std::make_shared<nn::MoE>(nn::MoEOptions{.d_model = 2, .d_hidden = 3, .n_experts = 2, .top_k = 1,
                                                    .capacity_factor = 0.0});
  m->to(tg::kFloat64);
  {
    tg::NoGradGuard g;
    m->router->weight.copy_(tg::eye(2, tg::kFloat64));  // logits = x
  }
  Tensor x = tg::tensor(std::vector<double>{2, 0, 1, 0, 0, 1, 3, 0}, {1, 4, 2});
  m->forward(x);
  // probs of expert 0 per token: sigmoid(a - b); argmax = 0, 0, 1, 0 -> f = (3/4, 1/4).
  auto sig = [](double t) { return 1.0 / (1.0 + std::exp(-t)); };
  double p0 = (sig(2) + sig(1) + sig(-1) + sig(3)) / 4, p1 = 1 - p0;
  CHECK(m->aux_loss().item<double>() == doctest::Approx(2 * (0.75 * p0 + 0.25 * p1)).epsilon(1e-12));
  auto lse = [](double a, double b) { return std::log(std::exp(a) + std::exp(b)); };
  double z = (std::pow(lse(2, 0), 2) + std::pow(lse(1, 0), 2) + std::pow(lse(0, 1), 2) + std::pow(lse(3, 0), 2)) / 4;
  CHECK(m->z_loss().item<double>() == doctest::Approx(z).epsilon(1e-12));
  CHECK(m->stats().tokens_per_expert == std::vector<int64_t>{3, 1});
  // Perfect balance gives exactly 1; ignored (-1) assignments do not count.
  Tensor uniform = tg::full({4, 2}, 0.5, tg::kFloat64);
  CHECK(F::load_balancing_loss(uniform, tg::tensor(std::vector<int64_t>{0, -1, 1, 1, 0, -1, 1, 0}, {4, 2})).item<double>() ==
        doctest::Approx(1.0));
  CHECK_THROWS_AS(F::load_balancing_loss(uniform, tg::tensor(std::vector<int64_t>{0, 2, 1, 0}, {4, 1})), tg::Error);
  CHECK_THROWS_AS(F::router_z_loss(tg::zeros({4}, tg::kFloat64)), tg::Error);
}

TEST_CASE("MoE: dense-to-sparse gate, dense at high temperature, top-k at low, off in eval, gradcheck") {
  tg::manual_seed(80);
  auto m = make_moe(4, 5, 4, 1, 0.0);
  m->options.dts_gumbel_noise = false;
  Tensor x = tg::randn({2, 5, 4}, tg::kFloat64);
  Tensor xf = x.reshape({-1, 4});
  Tensor logits = m->router->forward(xf).detach();

  m->set_gate_temperature(1e4);  // gates ~ 1/4 > threshold: every expert, weighted by softmax(logits / tau)
  Tensor y = m->forward(x);
  CHECK(m->stats().mean_experts_per_token == 4.0);
  CHECK(m->routes().size(1) == 4);
  Tensor g = tg::softmax(logits / 1e4, 1);
  std::vector<Tensor> dense;
  for (int64_t e = 0; e < 4; ++e)
    dense.push_back(m->experts->at<nn::Sequential>(e)->forward(xf) * g.narrow(1, e, 1));
  Tensor want = dense[0] + dense[1] + dense[2] + dense[3];
  CHECK(max_abs_diff(y.reshape({-1, 4}), want) < 1e-12);

  m->set_gate_temperature(1e-3);  // near one-hot: only the top-1 expert clears the threshold
  m->forward(x);
  CHECK(m->stats().mean_experts_per_token == 1.0);
  auto [v, top] = tg::max(logits, 1);
  CHECK(tg::equal(m->routes().reshape({-1}), top));

  m->set_gate_temperature(1e4);
  m->eval();  // eval ignores the temperature: plain top-1 softmax gating
  m->forward(x);
  CHECK(m->stats().mean_experts_per_token == 1.0);
  CHECK(tg::equal(m->routes().reshape({-1}), top));

  // Gradcheck through the tempered gates (no noise, so every evaluation routes alike).
  {
    auto small = make_moe(3, 4, 3, 1, 0.0);
    small->options.dts_gumbel_noise = false;
    small->set_gate_temperature(0.7);
    Tensor xs = tg::randn({1, 4, 3}, tg::kFloat64).requires_grad_();
    std::vector<Tensor> in{xs};
    for (auto& p : small->parameters()) in.push_back(p);
    small->forward(xs);
    CHECK(small->stats().mean_experts_per_token > 1.0);
    std::string report;
    CHECK_MESSAGE(tg::gradcheck([&](const std::vector<Tensor>& v) {
      return tg::cat({small->forward(v[0]).reshape({-1}), small->aux_loss().reshape({1})});
    }, in, {}, &report), report);
  }

  // With Gumbel noise every token still gets at least its top_k experts.
  m->train();
  m->options.dts_gumbel_noise = true;
  m->set_gate_temperature(0.5);
  m->forward(x);
  CHECK(m->stats().mean_experts_per_token >= 1.0);

  CHECK(F::dts_temperature(0, 100) == doctest::Approx(2.0));
  CHECK(F::dts_temperature(50, 100) == doctest::Approx(std::sqrt(2.0 * 0.3)));
  CHECK(F::dts_temperature(100, 100) == doctest::Approx(0.3));
  CHECK(F::dts_temperature(500, 100) == doctest::Approx(0.3));
}

TEST_CASE("MoE: bad options and inputs are tg::Errors, an empty batch routes nothing") {
  CHECK_THROWS_AS(nn::MoE({.d_model = 4, .d_hidden = 8, .n_experts = 2, .top_k = 3}), tg::Error);
  CHECK_THROWS_AS(nn::MoE({.d_model = 0, .d_hidden = 8, .n_experts = 2}), tg::Error);
  CHECK_THROWS_AS(nn::MoE({.d_model = 4, .d_hidden = 8, .n_experts = 2, .activation = "tanhh"}), tg::Error);
  nn::MoE m({.d_model = 4, .d_hidden = 8, .n_experts = 2});
  CHECK_THROWS_AS(m.forward(tg::zeros({2, 3, 5})), tg::Error);
  CHECK_THROWS_AS(m.forward(tg::zeros({2, 3, 4}, tg::kInt64)), tg::Error);
  Tensor y = m.forward(tg::zeros({0, 3, 4}));
  CHECK(y.sizes() == tg::Shape{0, 3, 4});
  CHECK(m.aux_loss().item<double>() == 0.0);
  // Float32 training step: the losses are differentiable scalars and every expert that got tokens gets a gradient.
  tg::manual_seed(81);
  Tensor x = tg::randn({2, 8, 4});
  Tensor loss = tg::sum(m.forward(x)) + m.aux_loss() * 1e-2 + m.z_loss() * 1e-3;
  CHECK(m.aux_loss().dtype() == tg::kFloat32);
  CHECK(m.z_loss().dtype() == tg::kFloat32);
  loss.backward();
  CHECK(m.router->weight.grad().defined());
  for (int64_t e = 0; e < 2; ++e)
    if (m.stats().tokens_per_expert[e] > 0) CHECK(m.experts->at<nn::Sequential>(e)->parameters()[0].grad().defined());
}

TEST_CASE("MoE: parity with a PyTorch per-token reference (top-1 and top-2 with dropping)") {
  auto cases = tg_test::load_cases(tg_test::kFixtures + "/moe.safetensors");
  REQUIRE(cases.size() == 2);
  for (auto& [name, c] : cases) {
    INFO(name);
    const int64_t k = name == "top2" ? 2 : 1;
    nn::MoE m({.d_model = 4, .d_hidden = 5, .n_experts = 3, .top_k = k, .capacity_factor = k == 2 ? 0.75 : 1.0});
    m.to(tg::kFloat64);
    std::map<std::string, Tensor> state;
    for (auto& [key, t] : c.inputs)
      if (key != "x") state[key] = t;
    m.load_state_dict(state);
    Tensor x = c.inputs.at("x").clone().requires_grad_();
    Tensor out = tg::cat({m.forward(x).reshape({-1}), m.aux_loss().reshape({1}), m.z_loss().reshape({1})});
    CHECK(m.stats().dropped_fraction > 0);
    std::string summary;
    tg_test::compare("out", out, c.outs.at(0), summary);
    std::vector<Tensor> leaves{x};
    std::vector<std::string> names{"x"};
    for (auto& [pn, p] : m.named_parameters()) {
      leaves.push_back(p);
      names.push_back(pn);
    }
    auto grads = tg::autograd::grad({tg::sum(out * c.w)}, leaves);
    for (size_t i = 0; i < leaves.size(); ++i) tg_test::compare("grad." + names[i], grads[i], c.grads.at(names[i]), summary);
    MESSAGE(name, ":", summary);
  }
}

}  // TEST_SUITE
