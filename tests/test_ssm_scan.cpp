// The fused selective scan (nn/selective_scan.h): against its composed reference (outputs and every gradient, in
// float64 and float32, with and without D, several thread counts, the kernel's N = 16 case and any other N), float64 gradcheck, size-0 inputs and the
// argument errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "nn/selective_scan.h"
#include "tapegrad.h"

using tg::Tensor;
namespace F = tg::nn::functional;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  if (a.numel() == 0) return 0;
  return tg::max(tg::abs(a.to(tg::kFloat64) - b.to(tg::kFloat64))).item<double>();
}

// Scan inputs in the ranges Mamba sees: delta = softplus(.) > 0, A = -exp(.) < 0.
std::vector<Tensor> scan_inputs(int64_t Bt, int64_t L, int64_t E, int64_t N, tg::DType dt, bool with_d = true) {
  tg::TensorOptions o(dt);
  std::vector<Tensor> v{tg::randn({Bt, L, E}, o), tg::softplus(tg::randn({Bt, L, E}, o)),
                        -tg::exp(tg::randn({E, N}, o) * 0.5), tg::randn({Bt, L, N}, o), tg::randn({Bt, L, N}, o),
                        with_d ? tg::randn({E}, o) : Tensor()};
  for (auto& t : v)
    if (t.defined()) t.requires_grad_();
  return v;
}

// Output and gradients of sum(scan(inputs) * w) for the fused op or the reference.
std::vector<Tensor> run(bool fused, const std::vector<Tensor>& in, const Tensor& w) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : in) leaves.push_back(t.defined() ? t.detach().clone().requires_grad_() : Tensor());
  auto f = fused ? F::selective_scan : F::selective_scan_ref;
  Tensor y = f(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5]);
  tg::sum(y * w).backward();
  std::vector<Tensor> out{y.detach()};
  for (const Tensor& t : leaves) out.push_back(t.defined() ? t.grad() : Tensor());
  return out;
}

}  // namespace

TEST_SUITE("ssm") {

TEST_CASE("selective_scan: fused kernel equals the composed reference, values and gradients") {
  tg::manual_seed(70);
  const char* names[] = {"y", "du", "ddelta", "dA", "dB", "dC", "dD"};
  for (tg::DType dt : {tg::kFloat64, tg::kFloat32}) {
    for (bool with_d : {true, false}) {
      for (auto [threads, N] : {std::pair{1, 17}, {2, 17}, {2, 16}}) {
        INFO("dtype ", tg::dtype_name(dt), " D ", with_d, " threads ", threads, " N ", N);
        tg::set_num_threads(threads);
        // Odd sizes, and enough work (Bt * L * E * N) to take the threaded path; N = 16 is the kernel's
        // compile-time case.
        auto in = scan_inputs(3, 37, 23, N, dt, with_d);
        Tensor w = tg::randn({3, 37, 23}, tg::TensorOptions(dt));
        auto a = run(true, in, w), b = run(false, in, w);
        const double tol = dt == tg::kFloat64 ? 1e-11 : 2e-4;
        for (size_t i = 0; i < a.size(); ++i) {
          INFO(names[i]);
          REQUIRE(a[i].defined() == b[i].defined());
          if (a[i].defined()) CHECK(max_abs_diff(a[i], b[i]) < tol * (1 + tg::max(tg::abs(b[i])).item<double>()));
        }
      }
    }
  }
  tg::set_num_threads(2);
}

TEST_CASE("selective_scan: float64 gradcheck of the fused op") {
  tg::manual_seed(71);
  for (bool with_d : {true, false}) {
    auto in = scan_inputs(2, 5, 3, 4, tg::kFloat64, with_d);
    std::vector<Tensor> leaves;
    for (auto& t : in)
      if (t.defined()) leaves.push_back(t);
    std::string report;
    CHECK_MESSAGE(tg::gradcheck(
                      [with_d](const std::vector<Tensor>& v) {
                        return F::selective_scan(v[0], v[1], v[2], v[3], v[4], with_d ? v[5] : Tensor());
                      },
                      leaves, {}, &report),
                  report);
  }
}

TEST_CASE("selective_scan: a hand-computed two-step case") {
  // One batch, one channel, N = 1: h_0 = d0 u0 B0, h_1 = exp(d1 A) h_0 + d1 u1 B1, y_t = C_t h_t + D u_t.
  auto t3 = [](std::vector<double> v) { return tg::tensor(v, {1, 2, 1}); };
  Tensor u = t3({1.0, 2.0}), d = t3({0.5, 0.25}), B = t3({3.0, -1.0}), C = t3({2.0, 4.0});
  Tensor A = tg::tensor(std::vector<double>{-2.0}, {1, 1}), D = tg::tensor(std::vector<double>{0.5}, {1});
  const double h0 = 0.5 * 1 * 3, h1 = std::exp(0.25 * -2.0) * h0 + 0.25 * 2 * -1;
  auto y = F::selective_scan(u, d, A, B, C, D).to_vector<double>();
  CHECK(y[0] == doctest::Approx(2 * h0 + 0.5));
  CHECK(y[1] == doctest::Approx(4 * h1 + 1.0));
}

TEST_CASE("selective_scan: size-0 length and batch, and argument errors") {
  for (auto [Bt, L] : {std::pair<int64_t, int64_t>{2, 0}, {0, 3}}) {
    auto in = scan_inputs(Bt, L, 3, 4, tg::kFloat32);
    Tensor y = F::selective_scan(in[0], in[1], in[2], in[3], in[4], in[5]);
    CHECK(y.sizes() == tg::Shape{Bt, L, 3});
    tg::sum(y).backward();
    CHECK(in[2].grad().sizes() == tg::Shape{3, 4});
    CHECK(tg::sum(tg::abs(in[2].grad())).item<double>() == 0.0);
  }
  auto in = scan_inputs(2, 5, 3, 4, tg::kFloat32);
  CHECK_THROWS_WITH_AS(F::selective_scan(in[0].select(0, 0), in[1], in[2], in[3], in[4]),
                       doctest::Contains("selective_scan: u must be [batch, length, channels]"), tg::Error);
  CHECK_THROWS_WITH_AS(F::selective_scan(in[0], in[1], in[2], in[3].narrow(2, 0, 3), in[4]),
                       doctest::Contains("selective_scan: B has shape [2, 5, 3], expected [2, 5, 4]"), tg::Error);
  CHECK_THROWS_WITH_AS(F::selective_scan(in[0], in[1].to(tg::kFloat64), in[2], in[3], in[4]),
                       doctest::Contains("delta has dtype float64"), tg::Error);
}

}  // TEST_SUITE
