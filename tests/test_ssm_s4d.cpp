// S4D (nn/s4d.h): the FFT convolution against the direct sum (values, gradients, gradcheck), the kernel's parity
// with PyTorch's complex arithmetic for both discretisations, the convolution and recurrent forms giving the same
// outputs and gradients, gradcheck of the layer in both forms, the bidirectional option, the continuous-time
// view (resampling the kernel at half the step), the three initialisations, and errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parity.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a.to(tg::kFloat64) - b.to(tg::kFloat64))).item<double>();
}

nn::S4DOptions tiny(const std::string& init, const std::string& disc, bool bidir = false) {
  return {.d_model = 3, .d_state = 4, .init = init, .discretization = disc, .bidirectional = bidir};
}

}  // namespace

TEST_SUITE("ssm") {

TEST_CASE("fft_conv: equals the direct causal convolution, with gradients, float32 and float64") {
  tg::manual_seed(80);
  for (tg::DType dt : {tg::kFloat64, tg::kFloat32}) {
    for (int64_t L : {1, 7, 16}) {
      INFO("dtype ", tg::dtype_name(dt), " L ", L);
      Tensor u = tg::randn({2, 3, L}, dt).requires_grad_(), k = tg::randn({3, L}, dt).requires_grad_();
      Tensor u2 = u.detach().clone().requires_grad_(), k2 = k.detach().clone().requires_grad_();
      Tensor w = tg::randn({2, 3, L}, dt);
      Tensor a = F::fft_conv(u, k), b = F::causal_conv_ref(u2, k2);
      const double tol = dt == tg::kFloat64 ? 1e-12 : 1e-4;
      CHECK(max_abs_diff(a, b) < tol);
      tg::sum(a * w).backward();
      tg::sum(b * w).backward();
      CHECK(max_abs_diff(u.grad(), u2.grad()) < tol);
      CHECK(max_abs_diff(k.grad(), k2.grad()) < tol);
    }
  }
  Tensor u = tg::randn({2, 2, 5}, tg::kFloat64).requires_grad_(), k = tg::randn({2, 5}, tg::kFloat64).requires_grad_();
  std::string report;
  CHECK_MESSAGE(tg::gradcheck([](const std::vector<Tensor>& v) { return F::fft_conv(v[0], v[1]); }, {u, k}, {}, &report),
                report);
  CHECK_THROWS_WITH_AS(F::fft_conv(u, k.narrow(1, 0, 4)), doctest::Contains("fft_conv: k has shape [2, 4], expected [2, 5]"),
                       tg::Error);
}

TEST_CASE("S4D kernel parity with PyTorch complex arithmetic, ZOH and bilinear") {
  auto cases = tg_test::load_cases(tg_test::kFixtures + "/ssm.safetensors");
  for (const char* disc : {"zoh", "bilinear"}) {
    tg_test::Case& c = cases.at(std::string("s4d_kernel_") + disc);
    nn::S4D m({.d_model = 3, .d_state = 8, .discretization = disc}, tg::kFloat64);
    std::map<std::string, Tensor> sd;
    for (const char* k : {"log_dt", "log_A_real", "A_imag", "C_re", "C_im"}) sd[k] = c.inputs.at(k);
    m.load_state_dict(sd, false);
    Tensor K = m.kernel(11);
    std::string summary;
    tg_test::compare("out", K, c.outs.at(0), summary);
    tg::sum(K * c.w).backward();
    for (const char* k : {"log_dt", "log_A_real", "A_imag", "C_re", "C_im"}) {
      Tensor p;
      for (auto& [name, t] : m.named_parameters())
        if (name == k) p = t;
      tg_test::compare(k, p.grad(), c.grads.at(k), summary);
    }
    const std::string line = std::string("s4d_kernel_") + disc + ":" + summary;
    MESSAGE(line);
  }
}

TEST_CASE("S4D: convolution and recurrence give the same outputs and gradients, and both gradcheck") {
  tg::manual_seed(81);
  for (const char* init : {"lin", "inv", "legs"}) {
    for (const char* disc : {"zoh", "bilinear"}) {
      INFO(init, " ", disc);
      nn::S4D m(tiny(init, disc), tg::kFloat64);
      Tensor x = tg::randn({2, 9, 3}, tg::kFloat64);
      Tensor xa = x.clone().requires_grad_(), xb = x.clone().requires_grad_();
      Tensor a = m.forward(xa);
      tg::sum(a * a).backward();
      std::vector<Tensor> ga{xa.grad()};
      for (auto& p : m.parameters()) ga.push_back(p.grad());
      m.zero_grad();
      Tensor b = m.forward_recurrent(xb);
      tg::sum(b * b).backward();
      std::vector<Tensor> gb{xb.grad()};
      for (auto& p : m.parameters()) gb.push_back(p.grad());
      CHECK(max_abs_diff(a, b) < 1e-12);
      for (size_t i = 0; i < ga.size(); ++i) CHECK(max_abs_diff(ga[i], gb[i]) < 1e-10);
    }
  }
  nn::S4D m(tiny("inv", "zoh"), tg::kFloat64);
  Tensor x = tg::randn({1, 5, 3}, tg::kFloat64).requires_grad_();
  std::vector<Tensor> leaves{x};
  for (auto& p : m.parameters()) leaves.push_back(p);
  std::string report;
  CHECK_MESSAGE(tg::gradcheck([&](const std::vector<Tensor>& v) { return m.forward(v[0]); }, leaves, {}, &report),
                report);
  CHECK_MESSAGE(tg::gradcheck([&](const std::vector<Tensor>& v) { return m.forward_recurrent(v[0]); }, leaves, {},
                              &report),
                report);
}

TEST_CASE("S4D: bidirectional sees the future, causal does not") {
  tg::manual_seed(82);
  for (bool bidir : {false, true}) {
    nn::S4D m(tiny("lin", "zoh", bidir), tg::kFloat64);
    Tensor x = tg::randn({1, 6, 3}, tg::kFloat64).requires_grad_();
    tg::sum(m.forward(x).select(1, 2)).backward();  // output at t = 2
    const double future = tg::sum(tg::abs(x.grad().narrow(1, 3, 3))).item<double>();
    if (bidir) CHECK(future > 1e-6);
    else CHECK(future < 1e-12);  // zero up to the FFT's rounding
    if (bidir) {
      // The anti-causal half is the causal convolution of the time-reversed input with the second kernel.
      tg::NoGradGuard g;
      Tensor xd = x.detach(), u = xd.transpose(1, 2).contiguous(), k = m.kernel(6);
      Tensor rev = tg::arange(5.0, -1.0, -1.0);
      Tensor y = F::causal_conv_ref(u, k.select(0, 0)) +
                 tg::index_select(F::causal_conv_ref(tg::index_select(u, 2, rev), k.select(0, 1)), 2, rev);
      auto ab = m.output_linear->forward(tg::gelu(y.transpose(1, 2) + xd * m.D)).chunk(2, -1);
      CHECK(max_abs_diff(m.forward(xd), ab[0] * tg::sigmoid(ab[1])) < 1e-12);
    }
  }
  nn::S4D m(tiny("lin", "zoh", true), tg::kFloat64);
  auto s = m.initial_state(1);
  CHECK_THROWS_WITH_AS(m.step(tg::randn({1, 3}, tg::kFloat64), s), doctest::Contains("no recurrent form"), tg::Error);
}

TEST_CASE("S4D: the continuous-time view, initialisations and errors") {
  tg::manual_seed(83);
  // Sampling the same system at half the step: with ZOH (B integrated over the step) K_{dt/2}[2l] ~ K_dt[l] / 2.
  nn::S4D m({.d_model = 2, .d_state = 8, .init = "lin", .dt_min = 0.01, .dt_max = 0.02}, tg::kFloat64);
  Tensor k1 = m.kernel(16), k2 = m.kernel(32, 0.5);
  Tensor even = tg::index_select(k2, 2, tg::arange(0.0, 32.0, 2.0));
  CHECK(max_abs_diff(even * 2.0, k1) < 0.05 * tg::max(tg::abs(k1)).item<double>());
  // S4D-Lin: Im A = pi n; S4D-Inv: N / pi (N / (2n + 1) - 1); LegS: distinct positive frequencies.
  auto lin = m.A_imag.select(0, 0).to_vector<double>();
  CHECK(lin[1] == doctest::Approx(3.14159265358979));
  nn::S4D inv({.d_model = 1, .d_state = 8, .init = "inv"}, tg::kFloat64);
  CHECK(inv.A_imag.select(0, 0).to_vector<double>()[1] == doctest::Approx(8 / 3.14159265358979 * (8.0 / 3 - 1)));
  nn::S4D legs({.d_model = 1, .d_state = 8, .init = "legs"}, tg::kFloat64);
  auto w = legs.A_imag.select(0, 0).to_vector<double>();
  for (size_t i = 0; i + 1 < w.size(); ++i) CHECK(w[i] > w[i + 1]);
  CHECK(w.back() > 0);
  CHECK_THROWS_WITH_AS(nn::S4D({.d_model = 2, .d_state = 5}), doctest::Contains("d_state even"), tg::Error);
  CHECK_THROWS_WITH_AS(nn::S4D({.d_model = 2, .init = "hippo"}), doctest::Contains("init must be"), tg::Error);
  CHECK_THROWS_WITH_AS(m.forward(tg::randn({1, 4, 3}, tg::kFloat64)), doctest::Contains("S4D: input must be [B, L, 2]"),
                       tg::Error);
}

}  // TEST_SUITE
