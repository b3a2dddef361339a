// The optimizer machinery and its rules, one behaviour per test: SPAM's reset, warm-up and spike clipping,
// gradient noise statistics, clipping, schedules, gradient accumulation, fused vs reference on large and strided
// parameters, thread-count determinism, and state_dict resume and its errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>
#include <vector>

#include <unistd.h>

#include "tapegrad.h"

using doctest::Approx;
using doctest::Contains;
using tg::Tensor;
namespace optim = tg::optim;

namespace {

// A float64 leaf parameter with the given values.
Tensor param(std::vector<double> v) { return tg::tensor<double>(v).requires_grad_(); }

void set_grad(const Tensor& p, std::vector<double> g) { p.set_grad(tg::tensor<double>(g).reshape(p.sizes())); }

double at(const Tensor& t, int64_t i) { return t.to_vector<double>()[i]; }

}  // namespace

TEST_SUITE("optim") {

// ---------------------------------------------------------------------------------------------------------- SPAM

TEST_CASE("SPAM: warm-up factor is 0.01 at a reset and rises by a cosine to 1 over N steps") {
  const int64_t N = 150;
  CHECK(optim::SPAM::warmup_scale(0, N) == Approx(0.01).epsilon(1e-14));
  CHECK(optim::SPAM::warmup_scale(N, N) == 1.0);
  CHECK(optim::SPAM::warmup_scale(N + 1, N) == 1.0);  // the initial current_step: no warm-up before a reset
  double mid = 1 - 0.99 * (1 + std::cos(std::numbers::pi * 75 / 151)) / 2;
  CHECK(optim::SPAM::warmup_scale(75, N) == Approx(mid).epsilon(1e-15));
  CHECK(optim::SPAM::warmup_scale(N - 1, N) == Approx(1 - 0.99 * (1 + std::cos(std::numbers::pi * 149 / 151)) / 2));
  CHECK(optim::SPAM::warmup_scale(N - 1, N) < 1.0);
  for (int64_t c = 1; c <= N; ++c) CHECK(optim::SPAM::warmup_scale(c, N) > optim::SPAM::warmup_scale(c - 1, N));
}

TEST_CASE("SPAM: moments reset every DeltaT steps, the step counter does not, and the update is warmed up") {
  Tensor p = param({0.5, -1.0, 2.0});
  optim::SPAM opt({p}, {.lr = 0.01, .warmup_steps = 5, .threshold = 0, .delta_t = 10});
  const std::vector<double> g = {0.3, -0.2, 0.7};
  for (int k = 1; k <= 25; ++k) {
    set_grad(p, g);
    opt.step();
    const auto& st = opt.state(0, 0);
    CHECK(st.step == k);  // never reset
    CHECK(opt.last_reset() == (k % 10 == 0));
    if (k % 10 == 0) {
      // Zeroed, then one update from this gradient: m = (1 - b1) g, v = (1 - b2) g^2 (float64, as computed).
      for (int i = 0; i < 3; ++i) {
        CHECK(at(st.at("exp_avg"), i) == Approx(0.1 * g[i]).epsilon(1e-12));
        CHECK(at(st.at("exp_avg_sq"), i) == Approx(0.001 * g[i] * g[i]).epsilon(1e-12));
      }
      CHECK(opt.last_scale() == Approx(0.01).epsilon(1e-14));
    } else if (k < 10) {
      CHECK(opt.last_scale() == 1.0);
    } else {
      int64_t since = k % 10;  // steps since the reset
      CHECK(opt.last_scale() == optim::SPAM::warmup_scale(since, 5));
    }
  }
  CHECK(opt.total_step() == 25);
}

TEST_CASE("SPAM: the first update after a reset is about 3.16 sign(g), scaled down by the warm-up") {
  // After a reset m = 0.1 g and v = 0.001 g^2, so m / sqrt(v) = 0.1 / sqrt(0.001) sign(g) = 3.162 sign(g), whatever
  // |g| is; the bias corrections do not undo it because the step counter kept counting. The warm-up factor 0.01
  // is what keeps this from being a 3x-too-large step.
  const double lr = 0.1, b1 = 0.9, b2 = 0.999;
  Tensor p = param({1.0, 1.0, 1.0, 1.0});
  optim::SPAM opt({p}, {.lr = lr, .threshold = 0, .delta_t = 50});
  tg::Generator gen(7);
  for (int k = 1; k < 50; ++k) {
    set_grad(p, {gen.normal(), gen.normal(), gen.normal(), gen.normal()});
    opt.step();
  }
  const std::vector<double> g = {2.5, -0.04, 40.0, -1.0};
  auto before = p.to_vector<double>();
  set_grad(p, g);
  opt.step();  // step 50: a reset step
  REQUIRE(opt.last_reset());
  const double t = 50, bc = std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
  auto after = p.to_vector<double>();
  for (int i = 0; i < 4; ++i) {
    double normalised = (before[i] - after[i]) / (lr * opt.last_scale() * bc);
    CHECK(normalised == Approx(0.1 / std::sqrt(0.001) * (g[i] > 0 ? 1 : -1)).epsilon(1e-3));  // eps = 1e-6 aside
  }
  CHECK(0.1 / std::sqrt(0.001) == Approx(3.1623).epsilon(1e-4));
}

TEST_CASE("SPAM: a spike g^2 > theta v is clipped to sign(g) sqrt(theta v) with the previous raw v") {
  const double theta = 5000, b1 = 0.9, b2 = 0.999;
  for (double spike : {1000.0, -1000.0}) {
    Tensor p = param({0.0, 0.0});
    optim::SPAM opt({p}, {.lr = 1e-3, .threshold = theta});
    for (int k = 1; k <= 30; ++k) {
      set_grad(p, {1.0, 1.0});
      opt.step();
    }
    const auto& st = opt.state(0, 0);
    const double m0 = at(st.at("exp_avg"), 0), v0 = at(st.at("exp_avg_sq"), 0);
    CHECK(v0 == Approx(1 - std::pow(b2, 30)).epsilon(1e-12));  // raw, not bias-corrected
    set_grad(p, {spike, 1.0});
    opt.step();  // step 31: clipping is on (k >= 20, no reset yet)
    REQUIRE(opt.last_clip());
    const double clipped = (spike > 0 ? 1 : -1) * std::sqrt(theta * v0);
    CHECK(std::abs(clipped) == Approx(12.16).epsilon(1e-3));
    CHECK(at(st.at("exp_avg"), 0) == Approx(b1 * m0 + (1 - b1) * clipped).epsilon(1e-12));
    CHECK(at(st.at("exp_avg_sq"), 0) == Approx(b2 * v0 + (1 - b2) * clipped * clipped).epsilon(1e-12));
    CHECK(at(st.at("exp_avg"), 1) == Approx(b1 * m0 + (1 - b1)).epsilon(1e-12));  // not a spike: unchanged
    CHECK(at(p.grad(), 0) == spike);  // the gradient itself is left alone
  }
}

TEST_CASE("SPAM: no clipping in the first 20 steps nor in the 20 steps after a reset") {
  Tensor p = param({0.0});
  optim::SPAM opt({p}, {.lr = 1e-3, .delta_t = 100});
  for (int k = 1; k <= 130; ++k) {
    set_grad(p, {k == 10 || k == 110 ? 1e4 : 1.0});  // spikes inside both windows
    opt.step();
    bool want = k >= 20 && k % 100 >= 20;
    CHECK_MESSAGE(opt.last_clip() == want, "step ", k);
    if (k == 10 || k == 110) {
      // Unclipped, the spike enters v in full: v = b2 v_prev + (1 - b2) 1e8 >= 1e5.
      CHECK(at(opt.state(0, 0).at("exp_avg_sq"), 0) >= 1e5);
    }
  }
}

TEST_CASE("SPAM: decoupled weight decay uses lr, not the warm-up-scaled step") {
  // With a zero gradient m and v stay 0 and the Adam part of the update is 0, so only the decay moves p, and on a
  // reset step (scale 0.01) it still shrinks p by lr * wd.
  Tensor p = param({2.0});
  optim::SPAM opt({p}, {.lr = 0.1, .weight_decay = 0.5, .delta_t = 3});
  for (int k = 1; k <= 3; ++k) {
    double before = p.item<double>();
    set_grad(p, {0.0});
    opt.step();
    CHECK(p.item<double>() == Approx(before * (1 - 0.1 * 0.5)).epsilon(1e-15));
  }
  CHECK(opt.last_reset());
}

// ------------------------------------------------------------------------------------------------ gradient noise

TEST_CASE("gradient noise: the empirical variance follows eta / (1 + t)^gamma (a variance, not a std)") {
  const double eta = 0.3, gamma = 0.55;
  optim::GradientNoise noise(eta, gamma, 123);
  const int64_t n = 200000;
  Tensor p = tg::zeros({n}, tg::kFloat64).requires_grad_();
  for (int64_t t = 0; t < 100; ++t) {
    if (t != 0 && t != 9 && t != 99) {
      noise.apply(std::vector<Tensor>{});  // only counts the step
      continue;
    }
    p.set_grad(tg::zeros({n}, tg::kFloat64));
    noise.apply(std::vector<Tensor>{p});
    auto g = p.grad().to_vector<double>();
    double mean = 0, var = 0;
    for (double x : g) mean += x;
    mean /= n;
    for (double x : g) var += (x - mean) * (x - mean);
    var /= n - 1;
    const double want = eta / std::pow(1.0 + t, gamma);
    INFO("t = ", t, " variance ", var, " want ", want);
    CHECK(noise.variance(t) == Approx(want).epsilon(1e-15));
    CHECK(noise.stddev(t) == Approx(std::sqrt(want)).epsilon(1e-15));
    CHECK(var == Approx(want).epsilon(0.02));  // the standard error of a variance estimate is sqrt(2 / n) = 0.3%
    CHECK(std::abs(mean) < 5 * std::sqrt(want / n));
    // Reading eta / (1 + t)^gamma as the standard deviation would give a variance of want^2: far off.
    CHECK(std::abs(var - want * want) > 0.5 * want);
  }
  CHECK(noise.step() == 100);
}

TEST_CASE("gradient noise: seeded, composable with an optimizer, and resumable from its state_dict") {
  auto run = [](optim::GradientNoise& noise, Tensor p, optim::Optimizer& opt, int steps) {
    for (int s = 0; s < steps; ++s) {
      p.set_grad(tg::ones({5}, tg::kFloat32));
      noise.apply(opt);
      opt.step();
    }
  };
  Tensor a = tg::zeros({5}).requires_grad_(), b = tg::zeros({5}).requires_grad_();
  optim::SGD oa({a}, {.lr = 0.1}), ob({b}, {.lr = 0.1});
  optim::GradientNoise na(0.01, 0.55, 9), nb(0.01, 0.55, 9);
  run(na, a, oa, 10);
  run(nb, b, ob, 4);
  // Resume b's noise from a state_dict taken at step 4 into a differently seeded object.
  optim::GradientNoise nc(0.5, 0.1, 1);
  const std::string path = "/tmp/tg_test_noise_" + std::to_string(::getpid()) + ".safetensors";
  tg::io::save_safetensors(path, nb.state_dict());
  auto sd = tg::io::load_safetensors(path);
  std::remove(path.c_str());
  nc.load_state_dict(sd);
  CHECK(nc.step() == 4);
  CHECK(nc.eta() == 0.01);
  run(nc, b, ob, 6);
  CHECK(tg::equal(a, b));
  // Bad state is refused before anything changes.
  sd.erase("rng.spare");
  CHECK_THROWS_WITH_AS(nc.load_state_dict(sd), Contains("rng.spare"), tg::Error);
  CHECK(nc.step() == 10);
}

// ------------------------------------------------------------------------------------------------------ clipping

TEST_CASE("clip_grad_norm_ and clip_grad_value_") {
  Tensor a = param({0, 0}), b = param({0}), none = param({1});
  set_grad(a, {3, 0});
  set_grad(b, {4});
  double total = optim::clip_grad_norm_({a, b, none}, 1.0);
  CHECK(total == Approx(5.0));
  const double coef = 1.0 / (5.0 + 1e-6);
  CHECK(at(a.grad(), 0) == Approx(3 * coef).epsilon(1e-15));
  CHECK(at(b.grad(), 0) == Approx(4 * coef).epsilon(1e-15));
  CHECK(!none.grad().defined());
  // Below the limit nothing changes (the coefficient clamps to 1).
  set_grad(a, {0.3, 0});
  set_grad(b, {0.4});
  CHECK(optim::clip_grad_norm_({a, b}, 1.0) == Approx(0.5));
  CHECK(at(a.grad(), 0) == 0.3);
  CHECK(optim::clip_grad_norm_({a, b}, 1.0, optim::kInfNorm) == Approx(0.4));
  set_grad(a, {NAN, 1});
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm_({a}, 1.0, 2.0, true), Contains("non-finite"), tg::Error);
  set_grad(a, {-3, 0.25});
  optim::clip_grad_value_({a}, 0.5);
  CHECK(a.grad().to_vector<double>() == std::vector<double>{-0.5, 0.25});
}

// ----------------------------------------------------------------------------------------------------- schedules

TEST_CASE("schedules: constant, step, warm-up + cosine with min lr, state_dict resume") {
  Tensor w = param({0}), v = param({0});
  optim::SGD opt({{.params = {w}, .lr = 1.0}, {.params = {v}, .lr = 0.5}}, {});
  {
    optim::ConstantLR c(opt);
    c.step();
    CHECK(opt.param_groups()[1].lr == 0.5);
  }
  optim::WarmupCosineLR sched(opt, 10, 110, 0.1);
  std::vector<double> lrs;
  for (int t = 0; t <= 120; ++t) {
    lrs.push_back(opt.param_groups()[0].lr);
    sched.step();
  }
  CHECK(lrs[0] == Approx(0.1));   // (0 + 1) / 10
  CHECK(lrs[9] == Approx(1.0));   // end of warm-up
  CHECK(lrs[10] == Approx(1.0));  // cosine starts at the base
  CHECK(lrs[60] == Approx(0.1 + 0.9 * 0.5));
  CHECK(lrs[110] == Approx(0.1));
  CHECK(lrs[120] == 0.1);
  for (int t = 11; t <= 110; ++t) CHECK(lrs[t] <= lrs[t - 1]);
  CHECK(opt.param_groups()[1].lr == 0.1);  // min_lr is absolute, for every group
  CHECK(sched.lr_at(5, 0.5) == Approx(0.5 * 6 / 10));
  // Resume: a new scheduler over the same optimizer continues from the saved t.
  optim::SGD opt2({{.params = {w}, .lr = 1.0}, {.params = {v}, .lr = 0.5}}, {});
  optim::WarmupCosineLR s1(opt2, 10, 110, 0.1);
  for (int t = 0; t < 30; ++t) s1.step();
  auto sd = s1.state_dict();
  optim::SGD opt3({{.params = {w}, .lr = 7.0}, {.params = {v}, .lr = 7.0}}, {});
  optim::WarmupCosineLR s2(opt3, 10, 110, 0.1);
  s2.load_state_dict(sd);
  CHECK(s2.last_step() == 30);
  CHECK(opt3.param_groups()[0].lr == lrs[30]);
  CHECK(opt3.param_groups()[1].lr == opt2.param_groups()[1].lr);
  sd.erase("base_lr.1");
  CHECK_THROWS_WITH_AS(s2.load_state_dict(sd), Contains("base_lr"), tg::Error);
  opt.param_groups()[0].lr = 1.0;
  optim::StepLR st(opt, 3, 0.5);
  for (int t = 0; t < 7; ++t) st.step();
  CHECK(opt.param_groups()[0].lr == 0.25);
}

// --------------------------------------------------------------------------------------- gradient accumulation

TEST_CASE("gradient accumulation: k micro-batches of loss / k give the full batch's gradient and step") {
  // The pattern: gradients add up across backward calls until zero_grad, so divide each micro-batch's (mean)
  // loss by the number of micro-batches and step once.
  tg::manual_seed(3);
  Tensor x = tg::randn({8, 3}, tg::kFloat64), y = tg::randn({8, 1}, tg::kFloat64);
  Tensor w0 = tg::randn({3, 1}, tg::kFloat64);
  auto loss_of = [](const Tensor& w, const Tensor& xb, const Tensor& yb) {
    Tensor r = tg::matmul(xb, w) - yb;
    return (r * r).mean();
  };
  Tensor wa = w0.clone().requires_grad_(), wb = w0.clone().requires_grad_();
  optim::Adam oa({wa}, {.lr = 0.1}), ob({wb}, {.lr = 0.1});
  loss_of(wa, x, y).backward();
  const int k = 4;
  for (int i = 0; i < k; ++i) (loss_of(wb, x.narrow(0, 2 * i, 2), y.narrow(0, 2 * i, 2)) / k).backward();
  CHECK(tg::allclose(wa.grad(), wb.grad(), 1e-13, 1e-15));
  oa.step();
  ob.step();
  CHECK(tg::allclose(wa, wb, 1e-13, 1e-15));
  ob.zero_grad();
  CHECK(!wb.grad().defined());
}

// -------------------------------------------------------------------------------- kernels: fused vs reference

TEST_CASE("fused kernels: equal the composed reference on large (parallel) and strided parameters") {
  for (tg::DType dt : {tg::kFloat32, tg::kFloat64}) {
    for (bool strided : {false, true}) {
      INFO(tg::dtype_name(dt), strided ? " strided" : " contiguous");
      tg::manual_seed(11);
      // 300 x 400 = 120000 elements, above kParallelGrain; the strided one is a transposed view.
      Tensor src = tg::randn({300, 400}, dt);
      Tensor a = strided ? src.clone().t() : src.clone(), b = strided ? src.clone().t() : src.clone();
      REQUIRE(a.is_contiguous() == !strided);
      a.requires_grad_();
      b.requires_grad_();
      optim::AdamW fa({a}, {.lr = 1e-2, .amsgrad = true}), ra({b}, {.lr = 1e-2, .amsgrad = true, .fused = false});
      optim::SPAM fs({a}, {.lr = 1e-2, .weight_decay = 0.1, .threshold = 10, .delta_t = 7, .grad_accu_steps = 2}),
          rs({b}, {.lr = 1e-2, .weight_decay = 0.1, .threshold = 10, .delta_t = 7, .grad_accu_steps = 2, .fused = false});
      optim::SGD fg({a}, {.lr = 1e-2, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true}),
          rg({b}, {.lr = 1e-2, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true, .fused = false});
      for (int s = 0; s < 12; ++s) {
        Tensor g = tg::randn(a.sizes(), dt) * (s == 10 ? 100.0 : 1.0);
        for (auto [fused, ref] : {std::pair<optim::Optimizer*, optim::Optimizer*>{&fa, &ra}, {&fs, &rs}, {&fg, &rg}}) {
          a.set_grad(g.clone());
          b.set_grad(g.clone());
          fused->step();
          ref->step();
        }
      }
      // The reference rounds add_(x, alpha)'s multiply separately, so allow a few epsilons.
      const double tol = dt == tg::kFloat32 ? 1e-5 : 1e-13;
      CHECK(tg::allclose(a, b, tol, tol));
    }
  }
}

TEST_CASE("fused kernels: the same bits at 1 and 2 threads") {
  auto run = [](int threads) {
    tg::set_num_threads(threads);
    tg::manual_seed(5);
    Tensor p = tg::randn({100000}).requires_grad_();
    optim::Adam opt({p}, {.lr = 1e-3, .weight_decay = 0.01});
    for (int s = 0; s < 5; ++s) {
      p.set_grad(tg::randn({100000}));
      opt.step();
    }
    return p;
  };
  int before = tg::get_num_threads();
  Tensor one = run(1), two = run(2);
  tg::set_num_threads(before);
  CHECK(tg::equal(one, two));
}

// ---------------------------------------------------------------------------------- machinery and state_dict

TEST_CASE("Optimizer: groups, defaults, zero_grad, parameters without gradients, bad arguments") {
  Tensor a = param({1, 2}), b = param({3});
  optim::Adam opt({{.params = {a}}, {.params = {b}, .lr = 0.5, .weight_decay = 0.2}}, {.lr = 0.1});
  CHECK(opt.param_groups()[0].lr == 0.1);
  CHECK(opt.param_groups()[0].weight_decay == 0.0);
  CHECK(opt.param_groups()[1].lr == 0.5);
  CHECK(opt.param_groups()[1].weight_decay == 0.2);
  CHECK(optim::AdamW({param({1})}).param_groups()[0].weight_decay == 0.01);  // AdamW's default
  set_grad(a, {1, 1});
  opt.step();
  CHECK(opt.state(0, 0).step == 1);
  CHECK(opt.state(1, 0).step == 0);  // b had no gradient: skipped, no state
  CHECK(b.item<double>() == 3);
  opt.zero_grad();
  CHECK(!a.grad().defined());
  opt.step();  // nothing has a gradient: nothing moves
  CHECK(opt.state(0, 0).step == 1);

  CHECK_THROWS_WITH_AS(optim::SGD({param({1})}, {}), Contains("no learning rate"), tg::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({a, a}), Contains("more than once"), tg::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({a * 2.0}), Contains("not a leaf"), tg::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({tg::arange(3)}), Contains("int64"), tg::Error);
  CHECK_THROWS_WITH_AS(optim::SGD({param({1})}, {.lr = 0.1, .nesterov = true}), Contains("Nesterov"), tg::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({param({1})}, {.beta1 = 1.0}), Contains("betas"), tg::Error);
  Tensor c = param({1, 2});
  optim::SGD sgd({c}, {.lr = 0.1});
  c.set_grad(tg::ones({2}, tg::kFloat32));
  CHECK_THROWS_WITH_AS(sgd.step(), Contains("gradient is float32 [2]"), tg::Error);
}

TEST_CASE("Optimizer state_dict: stop, save, load into a fresh optimizer and continue bit-identically") {
  struct Kind {
    const char* name;
    std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)> make;
  };
  std::vector<Kind> kinds = {
      {"SGD", [](auto ps) { return std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.05, .momentum = 0.9}); }},
      {"Adam", [](auto ps) { return std::make_unique<optim::Adam>(ps, optim::AdamOptions{.amsgrad = true}); }},
      {"AdamW", [](auto ps) { return std::make_unique<optim::AdamW>(ps); }},
      {"SPAM", [](auto ps) { return std::make_unique<optim::SPAM>(ps, optim::SPAMOptions{.lr = 0.01,
                                 .warmup_steps = 3, .threshold = 50, .delta_t = 6, .grad_accu_steps = 2}); }},
  };
  const std::string path = "/tmp/tg_test_optim_sd_" + std::to_string(::getpid()) + ".safetensors";
  for (const auto& kind : kinds) {
    INFO(kind.name);
    auto grads = [](int s) {
      tg::Generator g(100 + s);
      std::vector<float> v(6);
      for (auto& x : v) x = static_cast<float>(g.normal() * (s == 8 ? 30 : 1));
      return tg::tensor<float>(v, {2, 3});
    };
    tg::manual_seed(1);
    Tensor init = tg::randn({2, 3});
    Tensor straight = init.clone().requires_grad_(), resumed = init.clone().requires_grad_();
    auto o1 = kind.make({straight});
    for (int s = 0; s < 20; ++s) {
      straight.set_grad(grads(s));
      o1->step();
    }
    auto o2 = kind.make({resumed});
    for (int s = 0; s < 9; ++s) {
      resumed.set_grad(grads(s));
      o2->step();
    }
    tg::io::save_safetensors(path, o2->state_dict());
    Tensor saved_param = resumed.detach().clone();
    // A fresh parameter and optimizer, as after a restart.
    Tensor fresh = saved_param.clone().requires_grad_();
    auto o3 = kind.make({fresh});
    o3->load_state_dict(tg::io::load_safetensors(path));
    for (int s = 9; s < 20; ++s) {
      fresh.set_grad(grads(s));
      o3->step();
    }
    CHECK(tg::equal(straight, fresh));
    CHECK(o3->state(0, 0).step == 20);
  }
  std::remove(path.c_str());
}

TEST_CASE("Optimizer load_state_dict: errors name the entry and leave the optimizer unchanged") {
  Tensor a = param({1, 2}), b = param({3});
  optim::Adam adam({a, b}, {.lr = 0.1});
  set_grad(a, {1, 1});
  set_grad(b, {1});
  adam.step();
  const auto good = adam.state_dict();
  CHECK(good.count("state.0.0.exp_avg"));
  CHECK(good.count("group.0.lr"));
  CHECK(good.count("option.beta1"));
  CHECK(good.at("state.0.1.step").item<int64_t>() == 1);

  auto expect_error = [&](optim::StateDict d, const std::string& what) {
    auto before = adam.state_dict();
    CHECK_THROWS_WITH_AS(adam.load_state_dict(d), Contains(what.c_str()), tg::Error);
    CHECK(adam.state(0, 0).step == 1);
    CHECK(tg::equal(adam.state(0, 0).at("exp_avg"), before.at("state.0.0.exp_avg")));
  };
  auto d = good;
  d["state.0.0.exp_avg"] = tg::zeros({3}, tg::kFloat64);
  expect_error(d, "'state.0.0.exp_avg' has shape [3] but parameter 0 of group 0 has shape [2]");
  d = good;
  d.erase("option.eps");
  expect_error(d, "missing entry 'option.eps'");
  d = good;
  d["state.0.0.momentum_buffer"] = tg::zeros({2}, tg::kFloat64);
  expect_error(d, "unexpected entry 'state.0.0.momentum_buffer'");
  d = good;
  d["state.0.7.step"] = good.at("state.0.0.step");
  expect_error(d, "'state.0.7.step' names parameter 7");
  d = good;
  d["group.1.lr"] = good.at("group.0.lr");
  expect_error(d, "2 param group(s) but the optimizer has 1");
  d = good;
  d["option.amsgrad"] = tg::scalar_tensor(1.0, tg::kFloat64);
  expect_error(d, "'option.amsgrad' must be int64");
  // Another optimizer's state.
  optim::SGD sgd({a, b}, {.lr = 0.1, .momentum = 0.9});
  expect_error(sgd.state_dict(), "missing entry 'option.beta1'");
  // Loading a good dict restores the hyper-parameters too.
  adam.param_groups()[0].lr = 123;
  adam.load_state_dict(good);
  CHECK(adam.param_groups()[0].lr == 0.1);
}

}  // TEST_SUITE
