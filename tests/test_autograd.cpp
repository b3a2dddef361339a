// The tape and the engine: micrograd's classics, accumulation, retain_graph, in-place detection, grad mode,
// detach, autograd::grad, explicit gradients, memory bounds, broadcasting-aware gradients, custom Functions,
// tape inspection.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tapegrad.h"

namespace {

using tg::Shape;
using tg::Tensor;
using tg::autograd::Node;

std::vector<double> vec(const Tensor& t) { return t.to_vector<double>(); }

Tensor dleaf(std::vector<double> v, Shape s = {}) { return tg::tensor(v, s).requires_grad_(); }

// Checks that f throws a tg::Error whose message contains every one of parts.
template <class F> void check_error(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    FAIL_CHECK("expected a tg::Error");
  } catch (const tg::Error& e) {
    std::string msg = e.what();
    for (const char* p : parts)
      CHECK_MESSAGE(msg.find(p) != std::string::npos, "'" << std::string(p) << "' not in: " << msg);
  }
}

void check_all(const Tensor& t, double v, double tol = 1e-12) {
  for (double x : vec(t)) CHECK(x == doctest::Approx(v).epsilon(tol));
}

void check_close(const Tensor& a, const Tensor& b, double tol = 1e-10) {
  REQUIRE(a.sizes() == b.sizes());
  auto x = vec(a), y = vec(b);
  for (size_t i = 0; i < x.size(); ++i) CHECK(x[i] == doctest::Approx(y[i]).epsilon(tol));
}

// All nodes reachable from root.
std::vector<Node*> graph_nodes(const Tensor& root) {
  std::vector<Node*> out, stack;
  if (root.grad_fn()) stack.push_back(root.grad_fn().get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (std::find(out.begin(), out.end(), n) != out.end()) continue;
    out.push_back(n);
    for (auto& e : n->next)
      if (e.fn) stack.push_back(e.fn.get());
  }
  return out;
}

// ---- custom Functions
struct Cube : tg::autograd::Function<Cube> {
  static const char* name() { return "cube"; }
  static Tensor forward(tg::autograd::Context& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(tg::autograd::Context& ctx, const Tensor& grad) {
    Tensor x = ctx.saved()[0];
    return {grad * x * x * 3.0};
  }
};

// Two tensor inputs, a non-tensor argument and saved_data: out = alpha * x * y + y.
struct ScaledMulAdd : tg::autograd::Function<ScaledMulAdd> {
  static const char* name() { return "scaled_mul_add"; }
  static Tensor forward(tg::autograd::Context& ctx, const Tensor& x, const Tensor& y, double alpha) {
    ctx.save_for_backward({x, y});
    ctx.saved_data["alpha"] = alpha;
    return x * y * alpha + y;
  }
  static std::vector<Tensor> backward(tg::autograd::Context& ctx, const Tensor& g) {
    double alpha = std::any_cast<double>(ctx.saved_data["alpha"]);
    Tensor x = ctx.saved()[0], y = ctx.saved()[1];
    // y broadcasts against x in forward: reduce its gradient back
    return {g * y * alpha, tg::autograd::sum_to(g * x * alpha + g, y.sizes())};
  }
};

// A wrong backward (2x instead of 3x^2): gradcheck must catch it.
struct BadCube : tg::autograd::Function<BadCube> {
  static Tensor forward(tg::autograd::Context& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(tg::autograd::Context& ctx, const Tensor& grad) {
    return {grad * ctx.saved()[0] * 2.0};
  }
};

struct WrongArity : tg::autograd::Function<WrongArity> {
  static const char* name() { return "wrong_arity"; }
  static Tensor forward(tg::autograd::Context&, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(tg::autograd::Context&, const Tensor& g) { return {g, g}; }
};

}  // namespace

TEST_SUITE("autograd") {

TEST_CASE("micrograd: a tensor used twice") {
  Tensor a = dleaf({3.0}, {});
  Tensor b = a + a;
  Tensor c = b * b;  // c = 4 a^2
  c.backward();
  CHECK(c.item<double>() == 36.0);
  CHECK(a.grad().item<double>() == 24.0);  // 8a
  CHECK(a.grad().sizes() == Shape{});
}

TEST_CASE("micrograd: sanity check (engine.py test_sanity_check)") {
  Tensor x = dleaf({-4.0}, {});
  Tensor z = 2.0 * x + 2.0 + x;
  Tensor q = z.relu() + z * x;
  Tensor h = (z * z).relu();
  Tensor y = h + q + q * x;
  y.backward();
  CHECK(y.item<double>() == doctest::Approx(-20.0));
  CHECK(x.grad().item<double>() == doctest::Approx(46.0));
}

TEST_CASE("micrograd: more ops (engine.py test_more_ops)") {
  Tensor a = dleaf({-4.0}, {});
  Tensor b = dleaf({2.0}, {});
  Tensor c = a + b;
  Tensor d = a * b + b.pow(3.0);
  c = c + (c + 1.0);
  c = c + (1.0 + c + (-a));
  d = d + (d * 2.0 + (b + a).relu());
  d = d + (3.0 * d + (b - a).relu());
  Tensor e = c - d;
  Tensor f = e.pow(2.0);
  Tensor g = f / 2.0;
  g = g + 10.0 / f;
  g.backward();
  CHECK(g.item<double>() == doctest::Approx(24.70408163265306).epsilon(1e-12));
  CHECK(a.grad().item<double>() == doctest::Approx(138.83381924198252).epsilon(1e-12));
  CHECK(b.grad().item<double>() == doctest::Approx(645.5772594752186).epsilon(1e-12));
}

TEST_CASE("backward twice accumulates into .grad()") {
  Tensor x = dleaf({1, 2, 3});
  for (int i = 0; i < 2; ++i) (x * x).sum().backward();  // two graphs
  CHECK(vec(x.grad()) == std::vector<double>{4, 8, 12});
  (x * 5.0).sum().backward();
  CHECK(vec(x.grad()) == std::vector<double>{9, 13, 17});
}

TEST_CASE("tied weights: one parameter used in two places gets both contributions") {
  tg::manual_seed(7);
  Tensor w = tg::randn({3, 3}, tg::kFloat64).requires_grad_();
  Tensor x = tg::randn({2, 3}, tg::kFloat64);
  tg::matmul(tg::matmul(x, w).tanh(), w).sum().backward();
  // The same computation with two separate copies of the weight.
  Tensor w1 = w.detach().clone().requires_grad_(), w2 = w.detach().clone().requires_grad_();
  tg::matmul(tg::matmul(x, w1).tanh(), w2).sum().backward();
  check_close(w.grad(), w1.grad() + w2.grad());
  CHECK(tg::gradcheck([&](const std::vector<Tensor>& v) { return tg::matmul(tg::matmul(x, v[0]).tanh(), v[0]); },
                      {w.detach().clone().requires_grad_()}));
}

TEST_CASE("grad of a sum is ones") {
  for (Shape s : {Shape{}, Shape{5}, Shape{2, 3}, Shape{2, 0, 4}, Shape{1, 3, 1}}) {
    Tensor x = tg::randn(s, tg::kFloat64).requires_grad_();
    x.sum().backward();
    REQUIRE(x.grad().defined());
    CHECK(x.grad().sizes() == s);
    check_all(x.grad(), 1.0);
  }
  Tensor y = tg::randn({3, 4}).requires_grad_();  // float32 too
  y.sum().backward();
  CHECK(y.grad().dtype() == tg::kFloat32);
  check_all(y.grad(), 1.0);
}

TEST_CASE("retain_graph") {
  Tensor x = dleaf({0.5, -1.0});
  Tensor y = x.exp().sum();
  SUBCASE("a second backward without it throws") {
    y.backward();
    check_error([&] { y.backward(); }, {"second time", "retain_graph"});
  }
  SUBCASE("with it, a second backward doubles the gradients") {
    y.backward({}, /*retain_graph=*/true);
    std::vector<double> once = vec(x.grad());
    y.backward({}, true);
    std::vector<double> twice = vec(x.grad());
    for (size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == doctest::Approx(2 * once[i]));
    CHECK(once[0] == doctest::Approx(std::exp(0.5)));
  }
}

TEST_CASE("in-place modification of a saved tensor is detected") {
  SUBCASE("the op's own output") {
    Tensor x = dleaf({1, 2, 3});
    Tensor y = x.exp();
    {
      tg::NoGradGuard g;
      y.mul_(2);
    }
    check_error([&] { y.sum().backward(); }, {"exp", "in-place"});
  }
  SUBCASE("an input that does not require grad") {
    Tensor w = dleaf({1, 2, 3});
    Tensor c = tg::tensor(std::vector<double>{4, 5, 6});
    Tensor y = w * c;
    c.add_(tg::ones({3}, tg::kFloat64));  // allowed: c does not require grad
    check_error([&] { y.sum().backward(); }, {"mul", "in-place", "[3]"});
  }
  SUBCASE("through a view sharing the storage") {
    Tensor x = dleaf({1, 2, 3});
    Tensor base = tg::tensor(std::vector<double>{1, 2, 3, 4});
    Tensor y = x * base.narrow(0, 1, 3);  // saves the view
    base.narrow(0, 0, 1).fill_(7.0);  // another view of the same storage
    check_error([&] { y.sum().backward(); }, {"in-place"});
  }
  SUBCASE("a saved tensor of a custom Function") {
    Tensor x = dleaf({1, 2});
    Tensor c = tg::tensor(std::vector<double>{3, 4});
    Tensor y = ScaledMulAdd::apply(x, c, 2.0);
    c.mul_(3.0);
    check_error([&] { y.sum().backward(); }, {"scaled_mul_add", "in-place"});
  }
  SUBCASE("an in-place write that leaves values unchanged still counts, and untouched tensors pass") {
    Tensor x = dleaf({1, 2, 3});
    Tensor y = x.exp();
    Tensor z = tg::sin(x);
    {
      tg::NoGradGuard g;
      y.mul_(1.0);
    }
    check_error([&] { y.sum().backward(); }, {"in-place"});
    z.sum().backward();  // z's graph is intact
    check_close(x.grad(), tg::cos(x.detach()));
  }
}

TEST_CASE("a failed backward leaves no stale gradient behind") {
  Tensor a = dleaf({1, 2, 3});
  Tensor c = a * 3.0;   // recorded first: runs after exp in backward
  Tensor b = a.exp();   // saves its output
  {
    tg::NoGradGuard g;
    b.mul_(1.0);
  }
  Tensor s = (b + c).sum();
  CHECK_THROWS_AS(s.backward(), tg::Error);
  a.zero_grad();
  c.sum().backward();  // c's node saw a gradient from the failed pass; it must not be added here
  check_all(a.grad(), 3.0);
  // a failure while seeding the roots: the first root's node was already seeded
  Tensor r = (a * 2.0).sum();
  Tensor bad = tg::tensor(std::vector<double>{1.0});
  CHECK_THROWS_AS(tg::autograd::backward({r, bad}), tg::Error);
  a.zero_grad();
  r.backward();
  check_all(a.grad(), 2.0);
}

TEST_CASE("in-place ops on a tensor that requires grad are refused under grad mode") {
  Tensor w = dleaf({1, 2, 3});
  Tensor one = tg::ones({3}, tg::kFloat64);
  check_error([&] { w.mul_(2.0); }, {"mul_", "in-place", "requires grad", "[3]"});
  check_error([&] { w.add_(one); }, {"add_", "in-place"});
  check_error([&] { w.fill_(0.0); }, {"fill_"});
  check_error([&] { w.zero_(); }, {"fill_"});
  check_error([&] { w.copy_(one); }, {"copy_"});
  check_error([&] { w += one; }, {"add_"});
  check_error([&] { w *= 2.0; }, {"mul_"});
  Tensor y = w * 2.0;  // non-leaf
  check_error([&] { y.add_(one); }, {"add_"});
  check_error([&] { w.narrow(0, 0, 2).fill_(1.0); }, {"fill_"});  // a view of it
  CHECK(vec(w) == std::vector<double>{1, 2, 3});
  {
    tg::NoGradGuard g;  // an optimizer step
    w.add_(one, -0.5);
    w *= 2.0;
  }
  CHECK(vec(w) == std::vector<double>{1, 3, 5});
}

TEST_CASE("NoGradGuard and EnableGradGuard") {
  Tensor x = dleaf({1, 2});
  CHECK(tg::GradMode::is_enabled());
  size_t before = tg::autograd::tape_size();
  {
    tg::NoGradGuard g;
    CHECK_FALSE(tg::GradMode::is_enabled());
    Tensor y = (x * 2.0).exp().sum();
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(tg::autograd::tape_size() == before);
    {
      tg::EnableGradGuard e;
      Tensor z = x * 2.0;
      CHECK(z.requires_grad());
      CHECK(z.grad_fn() != nullptr);
      {
        tg::NoGradGuard g2;
        CHECK_FALSE((x + 1.0).requires_grad());
      }
      CHECK(tg::GradMode::is_enabled());
    }
    CHECK_FALSE(tg::GradMode::is_enabled());
  }
  CHECK(tg::GradMode::is_enabled());
  CHECK((x * 2.0).requires_grad());
}

TEST_CASE("requires_grad propagation and leaves") {
  Tensor x = dleaf({1, 2});
  Tensor c = tg::tensor(std::vector<double>{3, 4});
  CHECK(x.is_leaf());
  CHECK(c.is_leaf());
  CHECK_FALSE((c * c).requires_grad());
  Tensor y = x * c;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK(y.grad_fn()->name == "mul");
  CHECK_THROWS_AS(y.requires_grad_(false), tg::Error);
  x.requires_grad_(false);
  CHECK_FALSE((x * c).requires_grad());
  // tensors made by factories with requires_grad
  Tensor z = tg::zeros({2}, tg::TensorOptions(tg::kFloat64).requires_grad());
  CHECK(z.requires_grad());
  CHECK(z.is_leaf());
}

TEST_CASE("detach") {
  Tensor x = dleaf({1, 2, 3});
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.grad_fn() == nullptr);
  CHECK(d.data_ptr() == x.data_ptr());  // shares storage
  Tensor y = (x * 2.0).detach();
  CHECK_FALSE(y.requires_grad());
  // no gradient flows through a detached operand
  (x * x.detach()).sum().backward();
  CHECK(vec(x.grad()) == std::vector<double>{1, 2, 3});
}

TEST_CASE("zero_grad drops the gradient") {
  Tensor x = dleaf({1, 2});
  (x * 3.0).sum().backward();
  CHECK(vec(x.grad()) == std::vector<double>{3, 3});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  (x * 5.0).sum().backward();
  CHECK(vec(x.grad()) == std::vector<double>{5, 5});
}

TEST_CASE("autograd::grad") {
  Tensor x = dleaf({1, 2, 3});
  Tensor w = dleaf({0.5, -1, 2});
  SUBCASE("leaf inputs, .grad() untouched") {
    Tensor y = (x * x * w).sum();
    std::vector<Tensor> g = tg::autograd::grad({y}, {x});
    REQUIRE(g.size() == 1);
    check_close(g[0], tg::tensor(std::vector<double>{1, -4, 12}));
    CHECK_FALSE(x.grad().defined());
    CHECK_FALSE(w.grad().defined());
  }
  SUBCASE("non-leaf inputs") {
    Tensor h = x * 3.0;
    Tensor y = (h * h).sum();
    std::vector<Tensor> g = tg::autograd::grad({y}, {h, x});
    REQUIRE(g.size() == 2);
    check_close(g[0], tg::tensor(std::vector<double>{6, 12, 18}));   // 2h
    check_close(g[1], tg::tensor(std::vector<double>{18, 36, 54}));  // 18x
    CHECK_FALSE(x.grad().defined());
  }
  SUBCASE("the output itself as an input") {
    Tensor y = (x * 2.0).sum();
    std::vector<Tensor> g = tg::autograd::grad({y}, {y});
    CHECK(g[0].item<double>() == 1.0);
  }
  SUBCASE("grad_outputs and retain_graph") {
    Tensor y = x * w;
    Tensor go = tg::tensor(std::vector<double>{1, 10, 100});
    std::vector<Tensor> g1 = tg::autograd::grad({y}, {x, w}, {go}, /*retain_graph=*/true);
    std::vector<Tensor> g2 = tg::autograd::grad({y}, {x, w}, {go});
    check_close(g1[0], tg::tensor(std::vector<double>{0.5, -10, 200}));
    check_close(g1[1], tg::tensor(std::vector<double>{1, 20, 300}));
    check_close(g1[0], g2[0]);
    check_close(g1[1], g2[1]);
    check_error([&] { tg::autograd::grad({y}, {x}, {go}); }, {"second time"});
  }
  SUBCASE("broadcast leaf") {
    Tensor b = dleaf({2.0}, {});
    Tensor y = (x * b).sum();
    std::vector<Tensor> g = tg::autograd::grad({y}, {b});
    CHECK(g[0].sizes() == Shape{});
    CHECK(g[0].item<double>() == doctest::Approx(6.0));
  }
  SUBCASE("allow_unused") {
    Tensor unused = dleaf({1.0});
    Tensor y = (x * 2.0).sum();
    check_error([&] { tg::autograd::grad({y}, {x, unused}, {}, true); }, {"allow_unused", "input 1"});
    std::vector<Tensor> g = tg::autograd::grad({y}, {x, unused}, {}, false, /*allow_unused=*/true);
    check_all(g[0], 2.0);
    CHECK_FALSE(g[1].defined());
  }
  SUBCASE("an input that does not require grad") {
    Tensor c = tg::tensor(std::vector<double>{1.0});
    Tensor y = (x * 2.0).sum();
    check_error([&] { tg::autograd::grad({y}, {c}); }, {"does not require grad"});
  }
}

TEST_CASE("backward on a non-scalar") {
  Tensor x = dleaf({1, 2, 3});
  Tensor y = x * 2.0;
  check_error([&] { y.backward(); }, {"backward", "single-element", "[3]"});
  check_error([&] { y.backward(tg::ones({2}, tg::kFloat64)); }, {"backward", "[2]", "[3]"});
  y.backward(tg::tensor(std::vector<double>{1, 10, 100}));
  CHECK(vec(x.grad()) == std::vector<double>{2, 20, 200});
  // a one-element non-0-d output needs no gradient
  Tensor z = (x * 1.0).sum().reshape({1, 1});
  x.zero_grad();
  z.backward();
  check_all(x.grad(), 1.0);
  // several roots at once
  x.zero_grad();
  Tensor a = (x * 2.0).sum(), b = (x * x).sum();
  tg::autograd::backward({a, b});
  CHECK(vec(x.grad()) == std::vector<double>{4, 6, 8});
  // a root that does not require grad
  check_error([] { tg::tensor(std::vector<double>{1.0}).backward(); }, {"does not require grad"});
}

TEST_CASE("backward through a leaf root and a float32 graph") {
  Tensor x = tg::tensor(std::vector<float>{1, 2}).requires_grad_();
  x.backward(tg::tensor(std::vector<float>{3, 4}));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{3, 4});
  Tensor y = (x.to(tg::kFloat64) * 2.0).sum();
  y.backward();
  CHECK(x.grad().dtype() == tg::kFloat32);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{5, 6});
}

TEST_CASE("the explicit gradient given to backward is not aliased by .grad()") {
  Tensor x = dleaf({1, 2});
  Tensor g = tg::tensor(std::vector<double>{1, 1});
  (x + 0.0).backward(g);
  (x + 0.0).backward(g);  // accumulates in place into x.grad()
  CHECK(vec(g) == std::vector<double>{1, 1});
  CHECK(vec(x.grad()) == std::vector<double>{2, 2});
  Tensor y = dleaf({1, 2});
  y.backward(g);  // a leaf root
  y.backward(g);
  CHECK(vec(g) == std::vector<double>{1, 1});
  CHECK(vec(y.grad()) == std::vector<double>{2, 2});
}

TEST_CASE("memory: the tape stays bounded over many steps, and backward frees saved tensors") {
  tg::manual_seed(3);
  size_t before = tg::autograd::tape_size();
  {
    Tensor w = tg::randn({4, 3}, tg::kFloat64).mul_(0.1).requires_grad_();
    Tensor b = tg::zeros({3}, tg::kFloat64).requires_grad_();
    Tensor x = tg::randn({8, 4}, tg::kFloat64), t = tg::randn({8, 3}, tg::kFloat64);
    double first = 0, last = 0;
    for (int step = 0; step < 10000; ++step) {
      Tensor loss = tg::square((tg::matmul(x, w) + b).tanh() - t).mean();
      loss.backward();
      if (step == 0) first = loss.item<double>();
      last = loss.item<double>();
      {
        tg::NoGradGuard g;
        w.add_(w.grad(), -0.05);
        b.add_(b.grad(), -0.05);
      }
      w.zero_grad();
      b.zero_grad();
    }
    CHECK(last < first);
    CHECK(tg::autograd::tape_size() < before + 100);
  }
  CHECK(tg::autograd::tape_size() == before);

  Tensor x = dleaf({1, 2, 3});
  Tensor y = x.exp();
  const long held = y.storage().use_count();  // y and the copy saved for backward
  Tensor loss = (y * x).sum();
  std::vector<Node*> nodes = graph_nodes(loss);
  REQUIRE(nodes.size() == 3);
  for (Node* n : nodes) CHECK_FALSE(n->released);
  loss.backward();
  for (Node* n : nodes) {
    CHECK(n->released);
    CHECK(n->saved.empty());
  }
  CHECK(y.storage().use_count() < held);
  CHECK(tg::autograd::tape_string().find("[freed]") != std::string::npos);
  // with retain_graph nothing is freed
  Tensor loss2 = (x.exp() * x).sum();
  loss2.backward({}, true);
  for (Node* n : graph_nodes(loss2)) CHECK_FALSE(n->released);
}

TEST_CASE("a graph is freed when its tensors go out of scope") {
  size_t before = tg::autograd::tape_size();
  Tensor x = dleaf({1, 2});
  {
    Tensor y = (x * 2.0).exp().sum();
    CHECK(tg::autograd::tape_size() == before + 3);
  }
  CHECK(tg::autograd::tape_size() == before);
}

TEST_CASE("broadcasting-aware gradients have the inputs' shapes") {
  Tensor a = tg::randn({3, 1}, tg::kFloat64).requires_grad_();
  Tensor b = tg::randn({4}, tg::kFloat64).requires_grad_();
  Tensor s = tg::randn({}, tg::kFloat64).requires_grad_();
  Tensor y = (a + b) * s;
  CHECK(y.sizes() == Shape{3, 4});
  y.sum().backward();
  CHECK(a.grad().sizes() == Shape{3, 1});
  CHECK(b.grad().sizes() == Shape{4});
  CHECK(s.grad().sizes() == Shape{});
  check_all(a.grad(), 4 * s.item<double>());
  check_all(b.grad(), 3 * s.item<double>());
  CHECK(s.grad().item<double>() == doctest::Approx((a.detach() + b.detach()).sum().item<double>()));
  // middle-dim broadcast
  Tensor c = tg::randn({2, 1, 3}, tg::kFloat64).requires_grad_();
  Tensor d = tg::randn({4, 1}, tg::kFloat64).requires_grad_();
  (c * d).sum().backward();
  CHECK(c.grad().sizes() == Shape{2, 1, 3});
  CHECK(d.grad().sizes() == Shape{4, 1});
}

TEST_CASE("custom Function") {
  Tensor x = dleaf({1, -2, 3});
  Tensor y = Cube::apply(x);
  CHECK(vec(y) == std::vector<double>{1, -8, 27});
  CHECK(y.grad_fn()->name == "cube");
  CHECK(tg::autograd::tape_string().find("cube") != std::string::npos);
  y.sum().backward();
  CHECK(vec(x.grad()) == std::vector<double>{3, 12, 27});
  CHECK(tg::gradcheck([](const std::vector<Tensor>& v) { return Cube::apply(v[0]); },
                      {tg::randn({2, 3}, tg::kFloat64).requires_grad_()}));
  CHECK(tg::gradcheck([](const std::vector<Tensor>& v) { return ScaledMulAdd::apply(v[0], v[1], -1.5); },
                      {tg::randn({2, 3}, tg::kFloat64).requires_grad_(),
                       tg::randn({3}, tg::kFloat64).requires_grad_()}));
  // without any input requiring grad nothing is recorded
  Tensor c = Cube::apply(tg::tensor(std::vector<double>{2.0}));
  CHECK_FALSE(c.requires_grad());
  // forward runs without recording: the only node is the Function's
  Tensor z = Cube::apply(x);
  CHECK(graph_nodes(z).size() == 1);
}

TEST_CASE("gradcheck catches a wrong backward") {
  std::string report;
  CHECK_FALSE(tg::gradcheck([](const std::vector<Tensor>& v) { return BadCube::apply(v[0]); },
                            {tg::tensor(std::vector<double>{1.5, -2.0}).requires_grad_()}, {}, &report));
  CHECK(report.find("numerical") != std::string::npos);
  // a Function without name() is named by its type
  CHECK(BadCube::apply(dleaf({1.0})).grad_fn()->name.find("BadCube") != std::string::npos);
  check_error([] { WrongArity::apply(dleaf({1.0})).sum().backward(); }, {"wrong_arity", "2 gradients", "1"});
}

TEST_CASE("a gradient reaching an op without a backward formula is an error naming it") {
  Tensor x = dleaf({1, 2});
  Tensor out = tg::tensor(std::vector<double>{5, 6});
  tg::autograd::record("mystery_op", out, {x}, {}, nullptr);
  CHECK(out.requires_grad());
  check_error([&] { out.sum().backward(); }, {"mystery_op", "no backward"});
}

TEST_CASE("tape_string and to_dot name the ops") {
  Tensor x = dleaf({1, 2, 3});
  Tensor w = dleaf({1, 1, 1});
  Tensor y = (x.exp() * w).sum();
  std::string tape = tg::autograd::tape_string();
  for (const char* op : {"exp", "mul", "sum"}) CHECK(tape.find(op) != std::string::npos);
  CHECK(tape.find("leaf[3]") != std::string::npos);
  std::string dot = tg::autograd::to_dot(y);
  CHECK(dot.find("digraph") != std::string::npos);
  for (const char* op : {"exp", "mul", "sum", "leaf [3]", "->"}) CHECK_MESSAGE(dot.find(op) != std::string::npos, op);
  CHECK(tg::autograd::to_dot(x).find("digraph") != std::string::npos);  // a leaf: an empty graph
}

TEST_CASE("split outputs each get their own node and all gradients add up") {
  Tensor x = tg::randn({6, 2}, tg::kFloat64).requires_grad_();
  std::vector<Tensor> parts = x.split(2, 0);
  REQUIRE(parts.size() == 3);
  (parts[0].sum() + parts[2].sum() * 3.0).backward();  // parts[1] unused
  std::vector<double> g = vec(x.grad());
  std::vector<double> expect = {1, 1, 1, 1, 0, 0, 0, 0, 3, 3, 3, 3};
  CHECK(g == expect);
}

TEST_CASE("max, amax and maximum share the gradient on ties as PyTorch does") {
  Tensor x = dleaf({1, 3, 3, 2});
  tg::amax(x, {0}).backward();
  CHECK(vec(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0});
  x.zero_grad();
  std::get<0>(x.max(0)).backward();  // max(dim) sends it to the one index it returns
  std::vector<double> g = vec(x.grad());
  CHECK(g[0] + g[1] + g[2] + g[3] == 1.0);
  CHECK(g[1] + g[2] == 1.0);
  Tensor a = dleaf({1, 2}), b = dleaf({1, 3});
  tg::maximum(a, b).sum().backward();
  CHECK(vec(a.grad()) == std::vector<double>{0.5, 0});
  CHECK(vec(b.grad()) == std::vector<double>{0.5, 1});
}

}  // TEST_SUITE
