// minGRU / minLSTM: the fused logcumsumexp (against log(cumsum(exp)), stability, gradcheck), Heinsen's scan against
// the plain recurrence, and the layers' parallel (log-space scan) and sequential (step) modes giving the same
// outputs, final states and gradients, with and without a carried state.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "nn/min_rnn.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {
double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a.to(tg::kFloat64) - b.to(tg::kFloat64))).item<double>();
}
}  // namespace

TEST_SUITE("rnn") {

TEST_CASE("logcumsumexp: matches log(cumsum(exp(x))), stays finite for large inputs, gradcheck") {
  tg::manual_seed(20);
  Tensor x = tg::randn({3, 4, 5}, tg::kFloat64);
  for (int64_t d : {0, 1, 2, -1}) {
    INFO("dim ", d);
    CHECK(max_abs_diff(F::logcumsumexp(x, d), tg::log(tg::cumsum(tg::exp(x), d))) < 1e-14);
    std::string report;
    CHECK_MESSAGE(tg::gradcheck([d](const std::vector<Tensor>& v) { return F::logcumsumexp(v[0], d); },
                                {x.clone().requires_grad_()}, {}, &report),
                  report);
  }
  // Where exp overflows the naive form, the scan keeps exact offsets: logcumsumexp(x + c) = logcumsumexp(x) + c.
  Tensor big = F::logcumsumexp(x + 1000.0, 1);
  CHECK(max_abs_diff(big - 1000.0, F::logcumsumexp(x, 1)) < 1e-10);
  Tensor fbig = F::logcumsumexp((x * 50.0 - 3000.0).to(tg::kFloat32).requires_grad_(), 1);
  CHECK(std::isfinite(tg::sum(fbig).item<double>()));
  // -inf entries (log 0) contribute nothing and get a zero gradient.
  const double ninf = -std::numeric_limits<double>::infinity();
  Tensor xi = tg::tensor(std::vector<double>{ninf, ninf, 0.5, ninf, 1.0}).requires_grad_();
  Tensor yi = F::logcumsumexp(xi, 0);
  auto v = yi.to_vector<double>();
  CHECK(v[0] == ninf);
  CHECK(v[2] == doctest::Approx(0.5));
  CHECK(v[4] == doctest::Approx(std::log(std::exp(0.5) + std::exp(1.0))));
  tg::sum(yi.narrow(0, 2, 3)).backward();
  auto g = xi.grad().to_vector<double>();
  CHECK(g[0] == 0.0);
  CHECK(g[3] == 0.0);
  CHECK(std::isfinite(g[2]));
}

TEST_CASE("heinsen_scan: equals the recurrence h_t = a_t h_{t-1} + b_t") {
  tg::manual_seed(21);
  Tensor a = tg::rand({2, 30, 3}, tg::kFloat64) * 0.98 + 0.01, b = tg::rand({2, 30, 3}, tg::kFloat64) + 0.1;
  Tensor h = tg::exp(F::heinsen_scan(tg::log(a), tg::log(b)));
  Tensor prev = tg::zeros({2, 3}, tg::kFloat64);
  std::vector<Tensor> want;
  for (int64_t t = 0; t < 30; ++t) want.push_back(prev = a.select(1, t) * prev + b.select(1, t));
  CHECK(max_abs_diff(h, tg::stack(want, 1)) < 1e-12);
}

TEST_CASE("minGRU / minLSTM: the parallel scan and the sequential steps agree, outputs and gradients") {
  tg::manual_seed(22);
  for (bool lstm : {false, true})
    for (double expansion : {1.0, 1.5})
      for (bool with_h0 : {false, true}) {
        INFO((lstm ? "minLSTM" : "minGRU"), " expansion=", expansion, " h0=", with_h0);
        std::shared_ptr<nn::MinRNNBase> m;
        if (lstm) m = std::make_shared<nn::MinLSTM>(4, expansion);
        else m = std::make_shared<nn::MinGRU>(4, expansion);
        m->to(tg::kFloat64);
        CHECK((m->to_out != nullptr) == (expansion != 1.0));
        Tensor x = tg::randn({2, 9, 4}, tg::kFloat64).requires_grad_();
        Tensor h0 = with_h0 ? (tg::rand({2, m->dim_inner}, tg::kFloat64) + 0.1).requires_grad_() : Tensor();
        auto [yp, hp] = m->forward(x, h0);
        auto [ys, hs] = m->forward_sequential(x, h0);
        CHECK(yp.sizes() == tg::Shape{2, 9, 4});
        CHECK(max_abs_diff(yp, ys) < 1e-12);
        CHECK(max_abs_diff(hp, hs) < 1e-12);
        Tensor w = tg::randn(yp.sizes(), tg::kFloat64);
        std::vector<Tensor> leaves = m->parameters();
        leaves.push_back(x);
        if (with_h0) leaves.push_back(h0);
        auto gp = tg::autograd::grad({(yp * w).sum() + hp.sum()}, leaves);
        auto gs = tg::autograd::grad({(ys * w).sum() + hs.sum()}, leaves);
        for (size_t i = 0; i < leaves.size(); ++i) CHECK(max_abs_diff(gp[i], gs[i]) < 1e-11);
        // The state carries: two chunks give the one-pass result.
        auto [y1, h1] = m->forward(x.narrow(1, 0, 4), h0);
        auto [y2, h2] = m->forward(x.narrow(1, 4, 5), h1);
        CHECK(max_abs_diff(tg::cat({y1, y2}, 1), yp) < 1e-12);
        CHECK(max_abs_diff(h2, hp) < 1e-12);
      }
}

TEST_CASE("minGRU / minLSTM: gradcheck of the log-space scan path, float32 agreement of the modes") {
  tg::manual_seed(23);
  for (bool lstm : {false, true}) {
    std::shared_ptr<nn::MinRNNBase> m;
    if (lstm) m = std::make_shared<nn::MinLSTM>(3, 1.0);
    else m = std::make_shared<nn::MinGRU>(3, 1.0);
    m->to(tg::kFloat64);
    std::vector<Tensor> leaves = m->parameters();
    leaves.push_back(tg::randn({2, 5, 3}, tg::kFloat64).requires_grad_());
    leaves.push_back((tg::rand({2, 3}, tg::kFloat64) + 0.2).requires_grad_());
    const size_t np = leaves.size() - 2;
    std::string report;
    CHECK_MESSAGE(tg::gradcheck([&](const std::vector<Tensor>& v) { return std::get<0>(m->forward(v[np], v[np + 1])); },
                                leaves, {}, &report),
                  report);
    // float32 over a long sequence: the scan's cancellation (a* + logcumsumexp) stays at float rounding.
    m->to(tg::kFloat32);
    Tensor x = tg::randn({2, 256, 3});
    auto [yp, hp] = m->forward(x);
    auto [ys, hs] = m->forward_sequential(x);
    CHECK(max_abs_diff(yp, ys) < 1e-4 * std::max(1.0, tg::max(tg::abs(ys)).item<double>()));
  }
}

}  // TEST_SUITE
