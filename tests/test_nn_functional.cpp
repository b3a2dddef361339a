// nn::functional: every op gradchecked in float64, and each fused op (linear, cross_entropy, layer_norm, rms_norm)
// checked against a composed reference written here from tg ops, values and gradients both. Plus conv1d against a
// naive loop, dropout's statistics and modes, embedding's padding_idx, and the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad.h"

using tg::Tensor;
namespace F = tg::nn::functional;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor randn64(const tg::Shape& s, bool grad = true) {
  Tensor t = tg::randn(s, tg::kFloat64);
  if (grad) t.requires_grad_();
  return t;
}

void check_gradcheck(const Fn& fn, const std::vector<Tensor>& xs) {
  std::string report;
  bool ok = tg::gradcheck(fn, xs, {}, &report);
  CHECK_MESSAGE(ok, report);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

// The fused op and its composed reference agree on the value and on the gradient of (out * w).sum() for every
// input that requires grad.
void check_against_reference(const Fn& fused, const Fn& reference, const std::vector<Tensor>& xs, double tol = 1e-12) {
  std::vector<Tensor> diff;
  for (const auto& x : xs)
    if (x.defined() && x.requires_grad()) diff.push_back(x);
  Tensor a = fused(xs), b = reference(xs);
  CHECK(max_abs_diff(a, b) <= tol);
  Tensor w = tg::randn(a.sizes(), a.dtype());
  auto ga = tg::autograd::grad({(a * w).sum()}, diff);
  auto gb = tg::autograd::grad({(b * w).sum()}, diff);
  for (size_t i = 0; i < diff.size(); ++i) {
    INFO("gradient of input ", i);
    CHECK(max_abs_diff(ga[i], gb[i]) <= tol);
  }
}

// ---- composed references
Tensor linear_ref(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor y = tg::matmul(x, w.t());
  return b.defined() ? y + b : y;
}

// PyTorch's definition: (1 - s) * nll + s * mean_c(-log_softmax), zero on ignored rows, "mean" over kept rows.
Tensor cross_entropy_ref(const Tensor& x, const Tensor& t, int64_t ignore, double s, const std::string& red) {
  Tensor lp = tg::log_softmax(x, -1);
  Tensor valid = tg::ne(t, static_cast<double>(ignore));
  Tensor safe = tg::where(valid, t, 0.0);
  Tensor nll = -tg::gather(lp, 1, safe.unsqueeze(1)).squeeze(1);
  Tensor smooth = -tg::mean(lp, {1});
  Tensor per = tg::where(valid, nll * (1 - s) + smooth * s, 0.0);
  if (red == "none") return per;
  if (red == "sum") return per.sum();
  return per.sum() / tg::sum(valid).item<double>();
}

Tensor layer_norm_ref(const Tensor& x, int64_t k, const Tensor& w, const Tensor& b, double eps) {
  tg::Shape dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  Tensor mu = tg::mean(x, dims, true);
  Tensor var = tg::var(x, dims, 0, true);
  Tensor y = (x - mu) * tg::rsqrt(var + eps);
  if (w.defined()) y = y * w;
  if (b.defined()) y = y + b;
  return y;
}

Tensor rms_norm_ref(const Tensor& x, const Tensor& w, double eps) {
  Tensor y = x * tg::rsqrt(tg::mean(x * x, {-1}, true) + eps);
  return w.defined() ? y * w : y;
}

}  // namespace

TEST_SUITE("nn") {

TEST_CASE("nn functional: linear is gradchecked and equals matmul + bias") {
  tg::manual_seed(1);
  Tensor w = randn64({5, 4}), b = randn64({5});
  for (const tg::Shape& s : {tg::Shape{3, 4}, tg::Shape{2, 3, 4}, tg::Shape{4}, tg::Shape{0, 4}}) {
    INFO("input shape ", tg::shape_str(s));
    Tensor x = randn64(s);
    Fn fused = [](const std::vector<Tensor>& v) { return F::linear(v[0], v[1], v[2]); };
    Fn ref = [](const std::vector<Tensor>& v) { return linear_ref(v[0], v[1], v[2]); };
    if (x.numel() > 0) check_gradcheck(fused, {x, w, b});
    check_against_reference(fused, ref, {x, w, b});
  }
  // Without bias, and with a non-contiguous input and weight (transposed views).
  Tensor xt = randn64({4, 3}), wt = randn64({4, 5});
  Fn nobias = [](const std::vector<Tensor>& v) { return F::linear(v[0].t(), v[1].t()); };
  check_gradcheck(nobias, {xt, wt});
  check_against_reference(nobias, [](const std::vector<Tensor>& v) { return linear_ref(v[0].t(), v[1].t(), {}); },
                          {xt, wt});
  // float32 goes through the BLAS path with bias accumulation.
  Tensor x32 = tg::randn({64, 32}), w32 = tg::randn({48, 32}), b32 = tg::randn({48});
  CHECK(max_abs_diff(F::linear(x32, w32, b32), linear_ref(x32, w32, b32)) < 1e-4);
  // Products large enough to be split over threads, by rows (M >= N) and by output features (M < N).
  const int threads = tg::get_num_threads();
  tg::set_num_threads(2);
  for (const auto& [m, n] : {std::pair<int64_t, int64_t>{70, 40}, {20, 90}}) {
    Tensor xb = tg::randn({m, 96}, tg::kFloat64), wb = tg::randn({n, 96}, tg::kFloat64), bb = tg::randn({n}, tg::kFloat64);
    CHECK(max_abs_diff(F::linear(xb, wb, bb), linear_ref(xb, wb, bb)) < 1e-12);
    CHECK(max_abs_diff(F::linear(xb, wb), linear_ref(xb, wb, {})) < 1e-12);
  }
  tg::set_num_threads(threads);
}

TEST_CASE("nn functional: cross_entropy matches its composition (reductions, ignore_index, label smoothing)") {
  tg::manual_seed(2);
  Tensor x = randn64({6, 5});
  Tensor t = tg::tensor(std::vector<int64_t>{1, 4, -100, 0, 4, 2});
  for (std::string red : {"mean", "sum", "none"})
    for (double s : {0.0, 0.2}) {
      INFO(red, " smoothing ", s);
      Fn fused = [=](const std::vector<Tensor>& v) { return F::cross_entropy(v[0], t, -100, s, red); };
      Fn ref = [=](const std::vector<Tensor>& v) { return cross_entropy_ref(v[0], t, -100, s, red); };
      check_gradcheck(fused, {x});
      check_against_reference(fused, ref, {x});
    }
  // A custom ignore_index, and the class dim in dim 1 of a 3-d input.
  Tensor t2 = tg::tensor(std::vector<int64_t>{3, 3, 1, 0, 2, 3});
  check_against_reference([=](const std::vector<Tensor>& v) { return F::cross_entropy(v[0], t2, 3, 0.1); },
                          [=](const std::vector<Tensor>& v) { return cross_entropy_ref(v[0], t2, 3, 0.1, "mean"); }, {x});
  Tensor x3 = randn64({2, 5, 3});
  Tensor t3 = tg::tensor(std::vector<int64_t>{0, 4, 2, -100, 1, 1}, {2, 3});
  Fn kdim = [=](const std::vector<Tensor>& v) { return F::cross_entropy(v[0], t3, -100, 0.1, "none"); };
  check_gradcheck(kdim, {x3});
  Tensor rows = x3.permute({0, 2, 1}).reshape({6, 5});
  CHECK(max_abs_diff(kdim({x3}).reshape({6}), cross_entropy_ref(rows, t3.reshape({6}), -100, 0.1, "none")) < 1e-12);
  // Large logits stay finite (log-sum-exp with the max subtracted).
  Tensor big = tg::tensor(std::vector<double>{1000, -1000, 0, 999}, {1, 4});
  double l = F::cross_entropy(big, tg::tensor(std::vector<int64_t>{3}, {1})).item<double>();
  CHECK(l == doctest::Approx(1 + std::log1p(std::exp(-1.0))).epsilon(1e-12));
  // Every target ignored: "mean" is 0 / 0, NaN as in PyTorch.
  CHECK(std::isnan(F::cross_entropy(x, tg::full({6}, -100, tg::kInt64)).item<double>()));
  // float32 agrees with float64.
  Tensor x32 = x.detach().to(tg::kFloat32);
  CHECK(std::abs(F::cross_entropy(x32, t).item<double>() - F::cross_entropy(x.detach(), t).item<double>()) < 1e-6);
}

TEST_CASE("nn functional: layer_norm and rms_norm match their compositions") {
  tg::manual_seed(3);
  Tensor x = randn64({3, 4, 6}), w = randn64({6}), b = randn64({6});
  Fn ln = [](const std::vector<Tensor>& v) { return F::layer_norm(v[0], {6}, v[1], v[2], 1e-5); };
  check_gradcheck(ln, {x, w, b});
  check_against_reference(ln, [](const std::vector<Tensor>& v) { return layer_norm_ref(v[0], 1, v[1], v[2], 1e-5); },
                          {x, w, b});
  // Over two trailing dims, without affine parameters, on a non-contiguous view.
  Tensor xt = randn64({4, 6, 3});
  Fn ln2 = [](const std::vector<Tensor>& v) { return F::layer_norm(v[0].transpose(1, 2), {3, 6}); };
  check_gradcheck(ln2, {xt});
  check_against_reference(
      ln2, [](const std::vector<Tensor>& v) { return layer_norm_ref(v[0].transpose(1, 2), 2, {}, {}, 1e-5); }, {xt});
  // Weight only.
  Fn ln3 = [](const std::vector<Tensor>& v) { return F::layer_norm(v[0], {6}, v[1]); };
  check_gradcheck(ln3, {x, w});

  Fn rms = [](const std::vector<Tensor>& v) { return F::rms_norm(v[0], {6}, v[1], 1e-6); };
  check_gradcheck(rms, {x, w});
  check_against_reference(rms, [](const std::vector<Tensor>& v) { return rms_norm_ref(v[0], v[1], 1e-6); }, {x, w});
  Fn rms_plain = [](const std::vector<Tensor>& v) { return F::rms_norm(v[0], {6}); };
  check_gradcheck(rms_plain, {x});
  // The default eps is the dtype's machine epsilon.
  check_against_reference(rms_plain,
                          [](const std::vector<Tensor>& v) { return rms_norm_ref(v[0], {}, 2.220446049250313e-16); }, {x});
  // float32 rows are normalised: mean 0, variance 1.
  Tensor y = F::layer_norm(tg::randn({8, 256}) * 3.0 + 5.0, {256});
  CHECK(tg::amax(tg::abs(tg::mean(y, {1})), {}).item<double>() < 1e-5);
  CHECK(tg::amax(tg::abs(tg::var(y, {1}, 0) - 1.0), {}).item<double>() < 1e-3);
}

TEST_CASE("nn functional: conv1d equals a naive loop and is gradchecked (padding, stride, dilation, groups)") {
  tg::manual_seed(4);
  struct C { int64_t cin, cout, k, stride, pad, dil, groups, len; };
  for (const C& c : {C{3, 4, 3, 1, 1, 1, 1, 7}, C{4, 6, 2, 2, 0, 2, 2, 9}, C{4, 4, 3, 1, 2, 1, 4, 5},
                     C{2, 4, 1, 1, 0, 1, 2, 4}, C{4, 8, 3, 3, 1, 1, 4, 8}}) {
    INFO("cin ", c.cin, " cout ", c.cout, " k ", c.k, " stride ", c.stride, " pad ", c.pad, " dil ", c.dil, " groups ",
         c.groups);
    Tensor x = randn64({2, c.cin, c.len}), w = randn64({c.cout, c.cin / c.groups, c.k}), b = randn64({c.cout});
    Fn conv = [c](const std::vector<Tensor>& v) {
      return F::conv1d(v[0], v[1], v[2], c.stride, c.pad, c.dil, c.groups);
    };
    check_gradcheck(conv, {x, w, b});
    Tensor y = conv({x, w, b});
    const int64_t lout = (c.len + 2 * c.pad - c.dil * (c.k - 1) - 1) / c.stride + 1;
    REQUIRE(y.sizes() == tg::Shape{2, c.cout, lout});
    auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>(), yv = y.to_vector<double>();
    double err = 0;
    const int64_t cg = c.cin / c.groups, og = c.cout / c.groups;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t o = 0; o < c.cout; ++o)
        for (int64_t t = 0; t < lout; ++t) {
          double s = bv[o];
          for (int64_t i = 0; i < cg; ++i)
            for (int64_t k = 0; k < c.k; ++k) {
              int64_t pos = t * c.stride + k * c.dil - c.pad, ci = o / og * cg + i;
              if (pos >= 0 && pos < c.len) s += wv[(o * cg + i) * c.k + k] * xv[(n * c.cin + ci) * c.len + pos];
            }
          err = std::max(err, std::abs(s - yv[(n * c.cout + o) * lout + t]));
        }
    CHECK(err < 1e-12);
  }
}

TEST_CASE("nn functional: causal_conv1d sees only the past and equals padded conv1d trimmed") {
  tg::manual_seed(5);
  Tensor x = randn64({2, 4, 6}), w = randn64({4, 1, 3}), b = randn64({4});
  Fn causal = [](const std::vector<Tensor>& v) { return F::causal_conv1d(v[0], v[1], v[2], 1, 4); };
  check_gradcheck(causal, {x, w, b});
  Tensor y = causal({x, w, b});
  CHECK(y.sizes() == tg::Shape{2, 4, 6});
  Tensor trimmed = F::conv1d(x, w, b, 1, 2, 1, 4).narrow(2, 0, 6);
  CHECK(max_abs_diff(y, trimmed) < 1e-14);
  // Output t does not depend on inputs after t.
  auto g = tg::autograd::grad({y.select(2, 2).sum()}, {x})[0];
  CHECK(tg::amax(tg::abs(g.narrow(2, 3, 3)), {}).item<double>() == 0.0);
  CHECK(tg::amax(tg::abs(g.narrow(2, 0, 3)), {}).item<double>() > 0.0);
  // Dilated, dense (groups 1), unbatched.
  Tensor w2 = randn64({3, 4, 2}), xu = randn64({4, 7});
  Fn dil = [](const std::vector<Tensor>& v) { return F::causal_conv1d(v[0], v[1], {}, 2); };
  check_gradcheck(dil, {xu, w2});
  CHECK(dil({xu, w2}).sizes() == tg::Shape{3, 7});
}

TEST_CASE("nn functional: embedding with padding_idx sends no gradient to the padding row") {
  tg::manual_seed(6);
  Tensor w = randn64({5, 3});
  Tensor idx = tg::tensor(std::vector<int64_t>{0, 2, 2, 4, 1, 2}, {2, 3});
  Fn emb = [idx](const std::vector<Tensor>& v) { return F::embedding(idx, v[0], 2); };
  Tensor y = emb({w});
  CHECK(max_abs_diff(y, tg::embedding(w, idx)) == 0.0);  // same values
  y.sum().backward();
  auto g = w.grad();
  CHECK(tg::amax(tg::abs(g.select(0, 2)), {}).item<double>() == 0.0);
  CHECK(g.select(0, 0).to_vector<double>() == std::vector<double>{1, 1, 1});
  CHECK(g.select(0, 3).to_vector<double>() == std::vector<double>{0, 0, 0});
  // padding_idx counts from the end when negative.
  w.zero_grad();
  F::embedding(idx, w, -1).sum().backward();
  CHECK(tg::amax(tg::abs(w.grad().select(0, 4)), {}).item<double>() == 0.0);
  // (Finite differences see the padding row, so gradcheck the plain lookup.)
  check_gradcheck([idx](const std::vector<Tensor>& v) { return F::embedding(idx, v[0]); }, {randn64({5, 3})});
}

TEST_CASE("nn functional: dropout keeps 1 - p of the elements scaled by 1 / (1 - p), and is off in eval") {
  Tensor x = tg::ones({200, 100}, tg::kFloat64).requires_grad_();
  tg::manual_seed(7);
  Tensor y = F::dropout(x, 0.3, true);
  auto v = y.to_vector<double>();
  int64_t kept = 0;
  for (double e : v) {
    CHECK_MESSAGE((e == 0.0 || std::abs(e - 1 / 0.7) < 1e-15), e);
    kept += e != 0.0;
  }
  CHECK(std::abs(static_cast<double>(kept) / v.size() - 0.7) < 0.01);  // 20000 draws: 5 sigma is 0.016
  y.sum().backward();
  CHECK(max_abs_diff(x.grad(), y.detach()) == 0.0);  // d/dx (x * mask) = mask, and x is ones
  // Same seed, same mask.
  tg::manual_seed(7);
  CHECK(max_abs_diff(F::dropout(x, 0.3, true), y) == 0.0);
  // Identity when not training or p = 0; zeros for p = 1.
  CHECK(F::dropout(x, 0.3, false).is_same(x));
  CHECK(F::dropout(x, 0.0, true).is_same(x));
  CHECK(tg::amax(tg::abs(F::dropout(x, 1.0, true)), {}).item<double>() == 0.0);
  CHECK_THROWS_AS(F::dropout(x, 1.5), tg::Error);
}

TEST_CASE("nn functional: losses are gradchecked") {
  tg::manual_seed(8);
  Tensor a = randn64({3, 4}), b = randn64({3, 4});
  for (std::string red : {"mean", "sum", "none"}) {
    INFO(red);
    check_gradcheck([red](const std::vector<Tensor>& v) { return F::mse_loss(v[0], v[1], red); }, {a, b});
    Tensor t = tg::tensor(std::vector<int64_t>{1, -100, 3});
    check_gradcheck([=](const std::vector<Tensor>& v) { return F::nll_loss(tg::log_softmax(v[0], 1), t, -100, red); },
                    {a});
    Tensor y = tg::rand({3, 4}, tg::kFloat64).requires_grad_();
    Tensor pw = (tg::rand({4}, tg::kFloat64) + 0.5).requires_grad_();
    Tensor wt = tg::rand({3, 4}, tg::kFloat64).requires_grad_();
    check_gradcheck(
        [red](const std::vector<Tensor>& v) {
          return F::binary_cross_entropy_with_logits(v[0], v[1], v[2], v[3], red);
        },
        {a, y, wt, pw});
  }
  // nll_loss of log_softmax is cross_entropy.
  Tensor t = tg::tensor(std::vector<int64_t>{1, 0, 3});
  CHECK(std::abs(F::nll_loss(tg::log_softmax(a, 1), t).item<double>() - F::cross_entropy(a, t).item<double>()) < 1e-14);
  // BCE with logits stays exact for large |x|: loss(40, y=1) = log(1 + e^-40).
  Tensor big = tg::tensor(std::vector<double>{40.0, -40.0});
  Tensor yy = tg::tensor(std::vector<double>{1.0, 0.0});
  CHECK(F::binary_cross_entropy_with_logits(big, yy, {}, {}, "sum").item<double>() ==
        doctest::Approx(2 * std::log1p(std::exp(-40.0))).epsilon(1e-10));
}

TEST_CASE("nn functional: bad arguments are tg::Errors that name the op and the shapes") {
  Tensor x = tg::randn({3, 4}), w = tg::randn({5, 3});
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const tg::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = message([&] { F::linear(x, w); });
  CHECK(m.find("linear") != std::string::npos);
  CHECK(m.find("[3, 4]") != std::string::npos);
  CHECK(m.find("[5, 3]") != std::string::npos);
  Tensor logits = tg::randn({2, 3});
  m = message([&] { F::cross_entropy(logits, tg::tensor(std::vector<int64_t>{0, 3})); });
  CHECK(m.find("target 3 out of range for 3 classes") != std::string::npos);
  m = message([&] { F::cross_entropy(logits, tg::tensor(std::vector<int64_t>{0, 1, 2})); });
  CHECK(m.find("targets of shape [2]") != std::string::npos);
  m = message([&] { F::cross_entropy(logits, tg::tensor(std::vector<int64_t>{0, 1}), -100, 0, "avg"); });
  CHECK(m.find("reduction") != std::string::npos);
  m = message([&] { F::layer_norm(x, {3}); });
  CHECK(m.find("normalized_shape [3]") != std::string::npos);
  m = message([&] { F::layer_norm(x, {4}, tg::ones({3})); });
  CHECK(m.find("weight has shape [3], expected [4]") != std::string::npos);
  m = message([&] { F::conv1d(tg::randn({1, 3, 5}), tg::randn({4, 2, 3})); });
  CHECK(m.find("conv1d") != std::string::npos);
  m = message([&] { F::conv1d(tg::randn({1, 2, 2}), tg::randn({4, 2, 3})); });
  CHECK(m.find("shorter than the kernel") != std::string::npos);
  m = message([&] { F::linear(x, tg::randn({5, 4}, tg::kFloat64)); });
  CHECK(m.find("dtype") != std::string::npos);
}

}  // TEST_SUITE("nn")
