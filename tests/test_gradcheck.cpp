// float64 gradcheck (central differences) for every differentiable op in core/ops.h.
//
// Table-driven: each Case names an op, gives fn(inputs) -> Tensor and a list of samples; a sample is a list of
// input specs (In) that say the shape, the memory layout of the leaf (contiguous, transposed, an offset narrow of a
// bigger tensor, a strided slice) and the value domain (positive, kept away from non-differentiable points).
// Samples cover 0-d scalars, size-0 tensors, broadcasting, non-contiguous and offset leaves, and odd sizes.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tapegrad.h"

namespace {

using tg::Shape;
using tg::Tensor;
using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

enum class Layout { Contiguous, Transposed, Offset, Strided };

// One input of a sample.
struct In {
  Shape shape;
  Layout layout = Layout::Contiguous;
  bool positive = false;      // values in [0.5, 2.5)
  std::vector<double> avoid;  // values kept at least 0.1 away from these points
  bool grad = true;           // a leaf that requires grad (else a constant input)
};

In N(Shape s) { return In{std::move(s)}; }
In P(Shape s) {
  In i{std::move(s)};
  i.positive = true;
  return i;
}
In Away(Shape s, std::vector<double> pts) {
  In i{std::move(s)};
  i.avoid = std::move(pts);
  return i;
}
In T(In i) {  // transposed leaf: a .transpose(-1, -2) of a detached tensor
  i.layout = Layout::Transposed;
  return i;
}
In O(In i) {  // offset leaf: a narrow of dim 0 of a bigger detached tensor
  i.layout = Layout::Offset;
  return i;
}
In St(In i) {  // strided leaf: every other row of a bigger detached tensor
  i.layout = Layout::Strided;
  return i;
}
In Const(In i) {
  i.grad = false;
  return i;
}

using Sample = std::vector<In>;

std::string describe(const In& in) {
  static const char* names[] = {"", "T", "O", "St"};
  std::ostringstream os;
  os << names[static_cast<int>(in.layout)] << tg::shape_str(in.shape) << (in.grad ? "" : "(const)");
  return os.str();
}

Tensor make(const In& in) {
  Shape base = in.shape;
  const size_t n = base.size();
  switch (in.layout) {
    case Layout::Contiguous: break;
    case Layout::Transposed:
      REQUIRE(n >= 2);
      std::swap(base[n - 1], base[n - 2]);
      break;
    case Layout::Offset:
      REQUIRE(n >= 1);
      base[0] += 3;
      break;
    case Layout::Strided:
      REQUIRE(n >= 1);
      base[0] *= 2;
      break;
  }
  Tensor t = tg::randn(base, tg::kFloat64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = p[i];
    if (in.positive) v = 0.5 + 0.5 * std::abs(v);
    for (double pt : in.avoid)
      if (std::abs(v - pt) < 0.1) v = pt + (v >= pt ? 0.1 : -0.1);
    p[i] = v;
  }
  Tensor v;
  switch (in.layout) {
    case Layout::Contiguous: v = t; break;
    case Layout::Transposed: v = t.transpose(-1, -2); break;
    case Layout::Offset: v = t.narrow(0, 2, in.shape[0]); break;
    case Layout::Strided: v = t.slice(0, 1, base[0], 2); break;
  }
  REQUIRE(v.sizes() == in.shape);
  if (in.layout == Layout::Transposed && v.numel() > 1 && v.size(-1) > 1 && v.size(-2) > 1) REQUIRE(!v.is_contiguous());
  if (in.grad) v.requires_grad_();
  REQUIRE(v.is_leaf());
  return v;
}

struct Case {
  std::string name;
  Fn fn;
  std::vector<Sample> samples;
  tg::GradcheckOptions opt = {};
};

// The same gradient values seeded in another memory layout give the same input gradients: backward formulas and
// kernels must accept strided, transposed and broadcast (stride-0, as from sum()) incoming gradients.
bool layout_invariant(const Fn& fn, const V& xs, std::string* report) {
  V diff;
  for (const Tensor& x : xs)
    if (x.requires_grad()) diff.push_back(x);
  Tensor out = fn(xs);
  if (!out.requires_grad()) return true;
  const Shape& s = out.sizes();
  auto grads = [&](const Tensor& seed) { return tg::autograd::grad({out}, diff, {seed}, true, /*allow_unused=*/true); };
  auto same = [&](const V& a, const V& b, const char* what) {
    for (size_t k = 0; k < a.size(); ++k) {
      if (a[k].defined() != b[k].defined() ||
          (a[k].defined() && !(a[k].sizes() == b[k].sizes() && tg::allclose(a[k], b[k], 1e-10, 1e-12)))) {
        *report = std::string("gradient for input ") + std::to_string(k) + " differs with a " + what + " seed";
        return false;
      }
    }
    return true;
  };
  Tensor w = tg::randn(s, tg::kFloat64);
  V dense = grads(w);
  if (out.dim() >= 2) {  // the same values, stored transposed
    Tensor wt = w.transpose(-1, -2).contiguous().transpose(-1, -2);
    if (!same(dense, grads(wt), "transposed")) return false;
  }
  if (out.dim() >= 1) {  // every other element of a bigger buffer
    Shape big = s;
    big[0] *= 2;
    Tensor ws = tg::zeros(big, tg::kFloat64).slice(0, 0, big[0], 2);
    ws.copy_(w);
    if (!same(dense, grads(ws), "strided")) return false;
  }
  Tensor c = tg::full(s, 0.7, tg::kFloat64);  // a broadcast constant, as sum() sends back
  return same(grads(c), grads(tg::full({}, 0.7, tg::kFloat64).expand(s)), "broadcast");
}

void run_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    for (size_t s = 0; s < c.samples.size(); ++s) {
      tg::manual_seed(1000 + s);
      V xs;
      std::string shapes;
      for (const In& in : c.samples[s]) {
        xs.push_back(make(in));
        shapes += describe(in) + " ";
      }
      std::string report;
      bool ok = false;
      try {
        // Every op here is differentiable: its output must be on the tape (else gradcheck would see a zero gradient).
        bool any_grad = false;
        for (const Tensor& x : xs) any_grad = any_grad || x.requires_grad();
        Tensor out = c.fn(xs);
        CHECK_MESSAGE(out.requires_grad() == any_grad, c.name << " sample " << s << " (" << shapes
                                                              << "): output does not require grad");
        ok = tg::gradcheck(c.fn, xs, c.opt, &report) && layout_invariant(c.fn, xs, &report);
      } catch (const std::exception& e) {
        report = std::string("threw: ") + e.what();
      }
      CHECK_MESSAGE(ok, c.name << " sample " << s << " (" << shapes << "): " << report);
    }
  }
}

// Index and mask constants.
Tensor idx(std::vector<int64_t> v, Shape s = {}) {
  return tg::tensor(v, s.empty() ? Shape{static_cast<int64_t>(v.size())} : s);
}
Tensor idx0(int64_t v) { return tg::tensor(std::vector<int64_t>{v}, Shape{}); }  // a 0-d index
Tensor mask(const Shape& s) {  // deterministic true/false pattern
  std::vector<bool> m(static_cast<size_t>(tg::shape_numel(s)));
  for (size_t i = 0; i < m.size(); ++i) m[i] = (i * 7) % 3 == 0;
  return tg::tensor(m, s);
}

// Samples for an elementwise unary op, in a domain given by d.
std::vector<Sample> unary_samples(const std::function<In(Shape)>& d) {
  return {{d({})}, {d({0})}, {d({7})}, {d({2, 0, 3})}, {T(d({3, 5}))}, {O(d({4, 3}))}, {St(d({5, 2}))},
          {T(d({2, 3, 13}))}};
}

}  // namespace

TEST_SUITE("gradcheck") {

TEST_CASE("gradcheck: elementwise unary") {
  struct U {
    const char* name;
    std::function<Tensor(const Tensor&)> f;
    std::function<In(Shape)> domain;
  };
  auto normal = [](Shape s) { return N(s); };
  auto positive = [](Shape s) { return P(s); };
  auto away = [](std::vector<double> pts) { return [pts](Shape s) { return Away(s, pts); }; };
  std::vector<U> ops = {
      {"neg", [](const Tensor& x) { return tg::neg(x); }, normal},
      {"operator-", [](const Tensor& x) { return -x; }, normal},
      {"abs", [](const Tensor& x) { return tg::abs(x); }, away({0})},
      {"exp", [](const Tensor& x) { return tg::exp(x); }, normal},
      {"log", [](const Tensor& x) { return tg::log(x); }, positive},
      {"sqrt", [](const Tensor& x) { return tg::sqrt(x); }, positive},
      {"rsqrt", [](const Tensor& x) { return tg::rsqrt(x); }, positive},
      {"sin", [](const Tensor& x) { return tg::sin(x); }, normal},
      {"cos", [](const Tensor& x) { return tg::cos(x); }, normal},
      {"tanh", [](const Tensor& x) { return tg::tanh(x); }, normal},
      {"sigmoid", [](const Tensor& x) { return tg::sigmoid(x); }, normal},
      {"relu", [](const Tensor& x) { return tg::relu(x); }, away({0})},
      {"gelu(none)", [](const Tensor& x) { return tg::gelu(x); }, normal},
      {"gelu(tanh)", [](const Tensor& x) { return tg::gelu(x, "tanh"); }, normal},
      {"silu", [](const Tensor& x) { return tg::silu(x); }, normal},
      {"softplus", [](const Tensor& x) { return tg::softplus(x); }, normal},
      {"softplus(beta=2,threshold=1)", [](const Tensor& x) { return tg::softplus(x, 2.0, 1.0); }, away({0.5})},
      {"square", [](const Tensor& x) { return tg::square(x); }, normal},
      {"pow(2)", [](const Tensor& x) { return tg::pow(x, 2.0); }, normal},
      {"pow(3)", [](const Tensor& x) { return tg::pow(x, 3.0); }, normal},
      {"pow(0.5)", [](const Tensor& x) { return tg::pow(x, 0.5); }, positive},
      {"pow(-1.5)", [](const Tensor& x) { return tg::pow(x, -1.5); }, positive},
      {"pow(0)", [](const Tensor& x) { return tg::pow(x, 0.0); }, normal},
      {"clamp", [](const Tensor& x) { return tg::clamp(x, -0.5, 0.7); }, away({-0.5, 0.7})},
      {"clamp_min", [](const Tensor& x) { return tg::clamp_min(x, 0.2); }, away({0.2})},
      {"clamp_max", [](const Tensor& x) { return tg::clamp_max(x, -0.1); }, away({-0.1})},
  };
  std::vector<Case> cases;
  for (const U& u : ops) cases.push_back({u.name, [f = u.f](const V& x) { return f(x[0]); }, unary_samples(u.domain)});
  run_cases(cases);
}

TEST_CASE("gradcheck: elementwise binary, tensor-tensor with broadcasting") {
  auto samples = [](const std::function<In(Shape)>& da, const std::function<In(Shape)>& db) {
    return std::vector<Sample>{
        {da({3, 4}), db({3, 4})},
        {da({3, 1}), db({4})},                  // [3,1] + [4] -> [3,4]
        {da({}), db({2, 3})},                   // 0-d with a tensor
        {da({2, 3}), db({})},
        {da({}), db({})},
        {T(da({3, 4})), O(db({1, 4}))},         // transposed with an offset broadcast row
        {St(da({5, 1, 3})), T(db({4, 1}))},     // [5,1,3] with [4,1] -> [5,4,3]
        {da({0, 3}), db({3})},                  // size-0
        {da({7}), Const(db({7}))},              // only a requires grad
        {Const(da({2, 13})), db({13})},         // only b requires grad
    };
  };
  auto n = [](Shape s) { return N(s); };
  auto p = [](Shape s) { return P(s); };
  auto nz = [](Shape s) { return Away(s, {0}); };
  std::vector<Case> cases = {
      {"add", [](const V& x) { return tg::add(x[0], x[1]); }, samples(n, n)},
      {"add(alpha)", [](const V& x) { return tg::add(x[0], x[1], 2.5); }, samples(n, n)},
      {"operator+", [](const V& x) { return x[0] + x[1]; }, samples(n, n)},
      {"sub", [](const V& x) { return tg::sub(x[0], x[1]); }, samples(n, n)},
      {"sub(alpha)", [](const V& x) { return tg::sub(x[0], x[1], -0.5); }, samples(n, n)},
      {"mul", [](const V& x) { return tg::mul(x[0], x[1]); }, samples(n, n)},
      {"div", [](const V& x) { return tg::div(x[0], x[1]); }, samples(n, nz)},
      {"pow", [](const V& x) { return tg::pow(x[0], x[1]); }, samples(p, n)},
      {"maximum", [](const V& x) { return tg::maximum(x[0], x[1]); }, samples(n, n)},
      {"minimum", [](const V& x) { return tg::minimum(x[0], x[1]); }, samples(n, n)},
      // the same tensor on both sides
      {"mul(x, x)", [](const V& x) { return tg::mul(x[0], x[0]); }, {{N({3, 4})}, {T(N({2, 5}))}}},
      {"div(x, x + 3)", [](const V& x) { return x[0] / (tg::abs(x[0]) + 3.0); }, {{Away({6}, {0})}}},
  };
  run_cases(cases);
}

TEST_CASE("gradcheck: elementwise binary, tensor-scalar") {
  std::vector<Sample> s = {{N({})}, {N({0})}, {N({7})}, {T(N({3, 4}))}, {O(N({2, 3}))}};
  std::vector<Sample> nz = {{Away({}, {0})}, {Away({0}, {0})}, {Away({7}, {0})}, {T(Away({3, 4}, {0}))}};
  std::vector<Case> cases = {
      {"add(x, s)", [](const V& x) { return tg::add(x[0], 2.5); }, s},
      {"sub(x, s)", [](const V& x) { return tg::sub(x[0], 1.5); }, s},
      {"mul(x, s)", [](const V& x) { return tg::mul(x[0], -3.0); }, s},
      {"div(x, s)", [](const V& x) { return tg::div(x[0], 4.0); }, s},
      {"rsub(x, s)", [](const V& x) { return tg::rsub(x[0], 2.0); }, s},
      {"rdiv(x, s)", [](const V& x) { return tg::rdiv(x[0], 3.0); }, nz},
      {"s + x", [](const V& x) { return 2.0 + x[0]; }, s},
      {"s - x", [](const V& x) { return 2.0 - x[0]; }, s},
      {"s * x", [](const V& x) { return 2.0 * x[0]; }, s},
      {"s / x", [](const V& x) { return 2.0 / x[0]; }, nz},
      {"x - s", [](const V& x) { return x[0] - 2.0; }, s},
      {"x / s", [](const V& x) { return x[0] / 2.0; }, s},
  };
  run_cases(cases);
}

TEST_CASE("gradcheck: where, masked_fill, outer") {
  std::vector<Case> cases = {
      {"where(c, a, b)", [](const V& x) { return tg::where(mask({3, 4}), x[0], x[1]); },
       {{N({3, 4}), N({3, 4})}, {N({3, 1}), N({4})}, {T(N({3, 4})), N({})}, {Const(N({3, 4})), O(N({3, 4}))}}},
      {"where(c[3,1], a, b)", [](const V& x) { return tg::where(mask({3, 1}), x[0], x[1]); },
       {{N({3, 4}), N({4})}, {N({}), N({3, 4})}}},
      {"where(c, a, s)", [](const V& x) { return tg::where(mask({2, 5}), x[0], 1.5); }, {{N({2, 5})}, {N({5})}}},
      {"where(c, s, b)", [](const V& x) { return tg::where(mask({2, 5}), -1.5, x[0]); }, {{N({2, 5})}, {T(N({2, 5}))}}},
      {"where(size-0)", [](const V& x) { return tg::where(mask({0, 3}), x[0], x[1]); }, {{N({0, 3}), N({3})}}},
      {"masked_fill", [](const V& x) { return tg::masked_fill(x[0], mask({4}), 0.5); },
       {{N({3, 4})}, {T(N({2, 4}))}, {O(N({1, 4}))}}},
      {"masked_fill(same shape)", [](const V& x) { return tg::masked_fill(x[0], mask({3, 4}), -2.0); },
       {{N({3, 4})}, {T(N({3, 4}))}}},
      {"outer", [](const V& x) { return tg::outer(x[0], x[1]); },
       {{N({3}), N({4})}, {O(N({5})), St(N({2}))}, {N({0}), N({3})}, {N({7}), Const(N({1}))}}},
  };
  run_cases(cases);
}

TEST_CASE("gradcheck: reductions") {
  // 3-d inputs in several layouts, plus a 0-d scalar and a size-0 tensor where the op allows.
  std::vector<Sample> x3 = {{N({2, 3, 4})}, {O(N({2, 3, 5}))}, {St(N({3, 2, 3}))}, {T(N({2, 4, 3}))}};
  std::vector<Case> cases;
  const std::vector<Shape> dimsets = {{0}, {1}, {-1}, {0, 2}, {2, 0, 1}, {}};
  for (const Shape& dims : dimsets)
    for (bool keep : {false, true}) {
      std::string tag = tg::shape_str(dims) + (keep ? ", keepdim" : "");
      cases.push_back({"sum" + tag, [=](const V& x) { return tg::sum(x[0], dims, keep); }, x3});
      cases.push_back({"mean" + tag, [=](const V& x) { return tg::mean(x[0], dims, keep); }, x3});
      cases.push_back({"amax" + tag, [=](const V& x) { return tg::amax(x[0], dims, keep); }, x3});
      cases.push_back({"amin" + tag, [=](const V& x) { return tg::amin(x[0], dims, keep); }, x3});
      cases.push_back({"var" + tag, [=](const V& x) { return tg::var(x[0], dims, 1, keep); }, x3});
      cases.push_back({"var(correction=0)" + tag, [=](const V& x) { return tg::var(x[0], dims, 0, keep); }, x3});
      cases.push_back({"logsumexp" + tag, [=](const V& x) { return tg::logsumexp(x[0], dims, keep); }, x3});
    }
  for (int64_t d : {0, 1, 2, -1})
    for (bool keep : {false, true}) {
      std::string tag = "(" + std::to_string(d) + (keep ? ", keepdim)" : ")");
      cases.push_back({"max(dim)" + tag, [=](const V& x) { return std::get<0>(tg::max(x[0], d, keep)); }, x3});
      cases.push_back({"min(dim)" + tag, [=](const V& x) { return std::get<0>(tg::min(x[0], d, keep)); }, x3});
      cases.push_back({"cumsum" + tag, [=](const V& x) { return tg::cumsum(x[0], d); }, x3});
      cases.push_back({"softmax" + tag, [=](const V& x) { return tg::softmax(x[0], d); }, x3});
      cases.push_back({"log_softmax" + tag, [=](const V& x) { return tg::log_softmax(x[0], d); }, x3});
    }
  std::vector<Sample> all = {{N({})}, {N({7})}, {T(N({3, 5}))}, {O(N({2, 3}))}};
  cases.push_back({"sum()", [](const V& x) { return tg::sum(x[0]); }, all});
  cases.push_back({"Tensor::sum(dim)", [](const V& x) { return x[0].sum(-1); }, all});
  cases.push_back({"mean()", [](const V& x) { return tg::mean(x[0]); }, all});
  cases.push_back({"max()", [](const V& x) { return tg::max(x[0]); }, all});
  cases.push_back({"min()", [](const V& x) { return tg::min(x[0]); }, all});
  cases.push_back({"max(0) of 0-d/1-d", [](const V& x) { return std::get<0>(x[0].max(0)); }, all});
  cases.push_back({"min(0, keepdim) of 0-d/1-d", [](const V& x) { return std::get<0>(x[0].min(0, true)); }, all});
  cases.push_back({"logsumexp()", [](const V& x) { return tg::logsumexp(x[0], {}); }, all});
  cases.push_back({"var()", [](const V& x) { return tg::var(x[0], Shape{}); }, {{N({7})}, {T(N({3, 5}))}}});
  cases.push_back({"cumsum(0) of 0-d/1-d", [](const V& x) { return tg::cumsum(x[0], 0); }, all});
  cases.push_back({"softmax(0) of 0-d/1-d", [](const V& x) { return tg::softmax(x[0], 0); }, all});
  cases.push_back({"log_softmax(-1) of 0-d/1-d", [](const V& x) { return tg::log_softmax(x[0], -1); }, all});
  // size-0 inputs: reductions over non-empty dims give empty results; sum over an empty dim gives zeros.
  // (T: a transposed size-0 leaf, whose zero-size dim is the outer one of its memory layout)
  std::vector<Sample> empty = {{N({0, 3})}, {T(N({0, 3}))}, {T(N({3, 0}))}};
  cases.push_back({"sum(size-0, dim 0)", [](const V& x) { return tg::sum(x[0], {0}); }, empty});
  cases.push_back({"sum(size-0)", [](const V& x) { return tg::sum(x[0]); }, empty});
  cases.push_back({"mean(size-0, dim 1)", [](const V& x) { return tg::mean(x[0], {1}); },
                   {{N({0, 3})}, {T(N({0, 3}))}}});
  std::vector<Sample> empty_rows = {{N({0, 3})}, {T(N({0, 3}))}};  // reducing the non-empty dim
  cases.push_back({"amax(size-0, dim 1)", [](const V& x) { return tg::amax(x[0], {1}); }, empty_rows});
  cases.push_back({"max(size-0, dim 1)", [](const V& x) { return std::get<0>(tg::max(x[0], 1)); }, empty_rows});
  cases.push_back({"logsumexp(size-0, dim 1)", [](const V& x) { return tg::logsumexp(x[0], {1}); }, empty_rows});
  cases.push_back({"var(size-0, dim 1)", [](const V& x) { return tg::var(x[0], {1}); }, empty_rows});
  cases.push_back({"matmul(size-0)", [](const V& x) { return tg::matmul(x[0], x[0].t()); }, empty});
  cases.push_back({"cumsum(size-0)", [](const V& x) { return tg::cumsum(x[0], 0); }, empty});
  cases.push_back({"softmax(size-0)", [](const V& x) { return tg::softmax(x[0], 1); }, empty});
  cases.push_back({"log_softmax(size-0)", [](const V& x) { return tg::log_softmax(x[0], 0); }, empty});
  // odd sizes
  cases.push_back({"softmax(13)", [](const V& x) { return tg::softmax(x[0], 1); }, {{N({3, 13})}, {T(N({13, 3}))}}});
  cases.push_back({"sum(7, 13)", [](const V& x) { return tg::sum(x[0], {0}); }, {{N({7, 13})}, {T(N({13, 7}))}}});
  run_cases(cases);
}

TEST_CASE("gradcheck: matmul, mm, bmm") {
  Fn mmf = [](const V& x) { return tg::matmul(x[0], x[1]); };
  std::vector<Case> cases = {
      {"matmul 2d", mmf,
       {{N({3, 4}), N({4, 5})},
        {T(N({3, 4})), N({4, 5})},
        {N({3, 4}), T(N({4, 5}))},
        {T(N({3, 4})), T(N({4, 2}))},
        {O(N({2, 3})), St(N({3, 7}))},
        {N({1, 4}), N({4, 1})},
        {N({7, 13}), Const(N({13, 3}))},
        {Const(N({2, 3})), N({3, 5})}}},
      {"matmul size-0", mmf, {{N({0, 4}), N({4, 3})}, {N({3, 0}), N({0, 2})}, {N({2, 4}), N({4, 0})}}},
      {"matmul batched", mmf,
       {{N({2, 3, 4}), N({2, 4, 5})}, {T(N({2, 4, 3})), N({2, 3, 2})}, {O(N({2, 3, 4})), T(N({2, 4, 2}))}}},
      {"matmul broadcast batch", mmf,
       {{N({2, 1, 3, 4}), N({3, 4, 2})}, {N({1, 3, 4}), N({2, 4, 5})}, {N({2, 3, 4}), N({1, 4, 2})}}},
      {"matmul [..., M, K] @ [K, N]", mmf, {{N({2, 3, 4}), N({4, 5})}, {T(N({2, 3, 4})), T(N({4, 2}))}}},
      {"matmul [K, N] lhs 2d, rhs 3d", mmf, {{N({3, 4}), N({2, 4, 5})}}},
      {"matmul 1d @ 1d", mmf, {{N({4}), N({4})}, {O(N({5})), St(N({5}))}, {N({0}), N({0})}}},
      {"matmul 1d @ 2d", mmf, {{N({4}), N({4, 3})}, {N({4}), T(N({4, 3}))}}},
      {"matmul 2d @ 1d", mmf, {{N({3, 4}), N({4})}, {T(N({3, 4})), O(N({4}))}}},
      {"matmul 1d @ 3d", mmf, {{N({4}), N({2, 4, 3})}}},
      {"matmul 3d @ 1d", mmf, {{N({2, 3, 4}), N({4})}}},
      {"matmul x @ x^T", [](const V& x) { return tg::matmul(x[0], x[0].t()); }, {{N({3, 4})}, {T(N({2, 3}))}}},
      {"mm", [](const V& x) { return tg::mm(x[0], x[1]); }, {{N({3, 4}), N({4, 5})}, {T(N({2, 3})), O(N({3, 2}))}}},
      {"bmm", [](const V& x) { return tg::bmm(x[0], x[1]); },
       {{N({2, 3, 4}), N({2, 4, 5})}, {T(N({3, 4, 2})), St(N({3, 2, 3}))}, {N({0, 3, 4}), N({0, 4, 2})}}},
  };
  run_cases(cases);
}

TEST_CASE("gradcheck: indexing and joining") {
  std::vector<Case> cases = {
      {"index_select(0)", [](const V& x) { return tg::index_select(x[0], 0, idx({0, 2, 2, 4, -1})); },
       {{N({5, 3})}, {T(N({5, 3}))}, {O(N({5, 2}))}, {N({5})}}},
      {"index_select(1)", [](const V& x) { return tg::index_select(x[0], 1, idx({1, 1, 0})); },
       {{N({2, 3})}, {T(N({4, 3}))}, {St(N({3, 2}))}}},
      {"index_select(0-d index)", [](const V& x) { return tg::index_select(x[0], 0, idx0(2)); },
       {{N({4, 3})}}},
      {"index_select(empty index)", [](const V& x) { return tg::index_select(x[0], 0, idx({}, {0})); }, {{N({4, 3})}}},
      {"gather(1)", [](const V& x) { return tg::gather(x[0], 1, idx({0, 3, 3, 1, 2, 0}, {3, 2})); },
       {{N({3, 4})}, {T(N({3, 4}))}, {O(N({3, 4}))}, {N({4, 4})}}},
      {"gather(0)", [](const V& x) { return tg::gather(x[0], 0, idx({2, 0, 1, 2}, {2, 2})); },
       {{N({3, 2})}, {T(N({3, 3}))}}},
      {"scatter_add(1)", [](const V& x) { return tg::scatter_add(x[0], 1, idx({0, 4, 4, 1, 2, 2}, {3, 2}), x[1]); },
       {{N({3, 5}), N({3, 2})},
        {T(N({3, 5})), O(N({3, 2}))},
        {N({3, 5}), N({3, 3})},  // src bigger than index: only the covered part gets a gradient
        {Const(N({3, 5})), N({4, 2})},
        {N({3, 5}), Const(N({3, 2}))}}},
      {"scatter_add(0)", [](const V& x) { return tg::scatter_add(x[0], 0, idx({1, 1, 0, 2}, {2, 2}), x[1]); },
       {{N({3, 2}), N({2, 2})}, {T(N({3, 3})), T(N({2, 2}))}}},
      {"index_add(0)", [](const V& x) { return tg::index_add(x[0], 0, idx({0, 2, 2}), x[1]); },
       {{N({5, 3}), N({3, 3})},
        {T(N({5, 3})), O(N({3, 3}))},
        {Const(N({5, 3})), N({3, 3})},
        {N({5, 3}), Const(N({3, 3}))}}},
      {"index_add(1)", [](const V& x) { return tg::index_add(x[0], 1, idx({3, -1}), x[1]); },
       {{N({2, 4}), N({2, 2})}, {St(N({2, 4})), T(N({2, 2}))}}},
      {"embedding", [](const V& x) { return tg::embedding(x[0], idx({0, 5, 2, 2, 0, 1}, {2, 3})); },
       {{N({6, 3})}, {T(N({6, 3}))}, {O(N({6, 4}))}}},
      {"embedding(0-d indices)", [](const V& x) { return tg::embedding(x[0], idx0(3)); },
       {{N({4, 2})}}},
      {"cat(0)", [](const V& x) { return tg::cat({x[0], x[1], x[2]}, 0); },
       {{N({2, 3}), N({1, 3}), N({0, 3})}, {T(N({2, 3})), O(N({3, 3})), Const(N({1, 3}))}}},
      {"cat(1)", [](const V& x) { return tg::cat({x[0], x[1], x[0]}, -1); },
       {{N({2, 3}), N({2, 1})}, {St(N({2, 3})), T(N({2, 4}))}}},
      {"cat(1 tensor)", [](const V& x) { return tg::cat({x[0]}, 0); }, {{N({7})}}},
      {"stack", [](const V& x) { return tg::stack({x[0], x[1], x[2]}, 0); },
       {{N({2, 3}), N({2, 3}), N({2, 3})}, {T(N({2, 3})), O(N({2, 3})), Const(N({2, 3}))}, {N({}), N({}), N({})}}},
      {"stack(1)", [](const V& x) { return tg::stack({x[0], x[1]}, 1); }, {{N({2, 3}), T(N({2, 3}))}}},
      {"stack(-1)", [](const V& x) { return tg::stack({x[0], x[1]}, -1); }, {{N({2, 3}), N({2, 3})}, {N({0}), N({0})}}},
  };
  for (int64_t k : {0, 1, -1, 5}) {
    std::vector<Sample> s = {{N({3, 4})}, {T(N({4, 3}))}, {O(N({2, 3, 4}))}, {N({4, 1})}, {N({0, 3})}};
    cases.push_back({"tril(" + std::to_string(k) + ")", [k](const V& x) { return tg::tril(x[0], k); }, s});
    cases.push_back({"triu(" + std::to_string(k) + ")", [k](const V& x) { return tg::triu(x[0], k); }, s});
  }
  run_cases(cases);
}

TEST_CASE("gradcheck: views") {
  // Multi-output views are joined back (each part scaled differently, so a part sent to the wrong place shows).
  auto join = [](const std::vector<Tensor>& parts, int64_t dim) {
    std::vector<Tensor> scaled;
    for (size_t i = 0; i < parts.size(); ++i) scaled.push_back(parts[i] * static_cast<double>(i + 1));
    return tg::cat(scaled, dim);
  };
  std::vector<Case> cases = {
      {"view", [](const V& x) { return x[0].view({4, 3}); }, {{N({3, 4})}, {O(N({2, 6}))}}},
      {"view(-1)", [](const V& x) { return x[0].view({-1}); }, {{N({3, 4})}, {N({})}, {N({0, 3})}}},
      {"view(split dims)", [](const V& x) { return x[0].view({2, 2, 3}); }, {{N({4, 3})}, {O(N({4, 3}))}}},
      {"view(strided, compatible)", [](const V& x) { return x[0].view({5, 2, 1}); }, {{St(N({5, 2}))}}},
      {"view(0-d)", [](const V& x) { return x[0].view({1, 1}); }, {{N({})}}},
      {"reshape", [](const V& x) { return x[0].reshape({2, -1}); },
       {{N({3, 4})}, {T(N({3, 4}))}, {St(N({3, 4}))}, {O(N({2, 5}))}}},
      {"reshape(same)", [](const V& x) { return x[0].reshape({3, 4}); }, {{N({3, 4})}, {T(N({3, 4}))}}},
      {"reshape(0-d)", [](const V& x) { return x[0].reshape({}); }, {{N({1})}, {N({})}}},
      {"flatten", [](const V& x) { return x[0].flatten(); }, {{N({2, 3, 4})}, {T(N({2, 3, 4}))}, {N({})}}},
      {"flatten(1, 2)", [](const V& x) { return x[0].flatten(1, 2); }, {{N({2, 3, 4})}, {St(N({2, 3, 4}))}}},
      {"transpose", [](const V& x) { return x[0].transpose(0, 2); }, {{N({2, 3, 4})}, {T(N({2, 3, 4}))}}},
      {"transpose(0-d)", [](const V& x) { return x[0].transpose(0, -1); }, {{N({})}}},
      {"t", [](const V& x) { return x[0].t(); }, {{N({3, 4})}, {T(N({3, 4}))}, {N({7})}}},
      {"permute", [](const V& x) { return x[0].permute({2, 0, 1}); }, {{N({2, 3, 4})}, {O(N({2, 3, 4}))}}},
      {"permute(-1)", [](const V& x) { return x[0].permute({-1, 0}); }, {{T(N({3, 5}))}}},
      {"narrow", [](const V& x) { return x[0].narrow(1, 1, 2); }, {{N({3, 4})}, {T(N({3, 4}))}, {O(N({2, 3}))}}},
      {"narrow(neg start)", [](const V& x) { return x[0].narrow(0, -2, 2); }, {{N({5, 2})}}},
      {"narrow(length 0)", [](const V& x) { return x[0].narrow(0, 1, 0); }, {{N({3, 2})}}},
      {"slice(step 2)", [](const V& x) { return x[0].slice(0, 1, 7, 2); },
       {{N({7, 3})}, {T(N({7, 3}))}, {St(N({7, 2}))}}},
      {"slice(step 3, neg)", [](const V& x) { return x[0].slice(1, -5, -1, 3); }, {{N({2, 7})}, {O(N({2, 13}))}}},
      {"slice(empty)", [](const V& x) { return x[0].slice(0, 3, 2); }, {{N({4, 2})}}},
      {"select", [](const V& x) { return x[0].select(1, -1); }, {{N({3, 4})}, {T(N({3, 4}))}}},
      {"select(0)", [](const V& x) { return x[0].select(0, 2); }, {{O(N({3, 4}))}, {N({3, 0})}, {N({5})}}},
      {"squeeze()", [](const V& x) { return x[0].squeeze(); }, {{N({3, 1, 4, 1})}, {N({1})}, {N({})}, {T(N({1, 3}))}}},
      {"squeeze(dim)", [](const V& x) { return x[0].squeeze(1); }, {{N({3, 1, 4})}, {N({3, 2})}, {T(N({3, 1}))}}},
      {"unsqueeze", [](const V& x) { return x[0].unsqueeze(0); }, {{N({3, 4})}, {N({})}, {T(N({3, 4}))}}},
      {"unsqueeze(-1)", [](const V& x) { return x[0].unsqueeze(-1); }, {{N({3, 4})}, {St(N({3, 4}))}}},
      {"expand", [](const V& x) { return x[0].expand({2, 3, 4}); }, {{N({3, 1})}, {N({1, 4})}, {N({4})}, {N({})}}},
      {"expand(-1)", [](const V& x) { return x[0].expand({-1, 5}); }, {{N({3, 1})}, {O(N({2, 1}))}}},
      {"expand(to size 0)", [](const V& x) { return x[0].expand({0, 3}); }, {{N({1, 3})}}},
      {"expand_as", [](const V& x) { return x[0].expand_as(x[1]); }, {{N({3, 1}), Const(N({3, 4}))}}},
      {"split", [join](const V& x) { return join(x[0].split(2, 0), 0); },
       {{N({5, 3})}, {T(N({5, 3}))}, {O(N({7, 2}))}}},
      {"split(sizes)", [join](const V& x) { return join(tg::split(x[0], std::vector<int64_t>{1, 3, 0, 1}, 1), 1); },
       {{N({2, 5})}, {St(N({2, 5}))}}},
      {"chunk", [join](const V& x) { return join(x[0].chunk(3, 1), 1); }, {{N({2, 7})}, {T(N({2, 7}))}}},
      {"unbind", [](const V& x) {
         std::vector<Tensor> parts = tg::unbind(x[0], 1);
         for (size_t i = 0; i < parts.size(); ++i) parts[i] = parts[i] * static_cast<double>(i + 1);
         return tg::stack(parts, 0);
       },
       {{N({2, 3})}, {T(N({2, 3}))}, {O(N({2, 4}))}}},
      // a chain of views over a non-contiguous offset leaf
      {"view chain", [](const V& x) {
         return x[0].transpose(0, 1).slice(0, 0, 4, 2).unsqueeze(1).expand({-1, 3, -1}).reshape({-1}).narrow(0, 1, 5);
       },
       {{N({3, 4})}, {T(N({3, 4}))}, {O(N({3, 4}))}}},
  };
  run_cases(cases);
}

TEST_CASE("gradcheck: copies and conversions") {
  tg::GradcheckOptions loose;  // a float32 round trip has float32 rounding error in the finite differences
  loose.eps = 1e-2;
  loose.atol = 1e-3;
  loose.rtol = 1e-2;
  std::vector<Sample> s = {{N({})}, {N({0})}, {N({7})}, {T(N({3, 4}))}, {O(N({2, 3}))}};
  std::vector<Case> cases = {
      {"to(float32).to(float64)", [](const V& x) { return x[0].to(tg::kFloat32).to(tg::kFloat64); }, s, loose},
      {"to(float32) * x", [](const V& x) { return x[0].to(tg::kFloat32).to(tg::kFloat64) * x[0]; }, s, loose},
      {"to(float64)", [](const V& x) { return x[0].to(tg::kFloat64); }, s},
      {"clone", [](const V& x) { return x[0].clone(); }, s},
      {"contiguous", [](const V& x) { return x[0].contiguous(); }, s},
      {"to(cpu)", [](const V& x) { return x[0].to(tg::Device::cpu()); }, s},
  };
  run_cases(cases);
}

TEST_CASE("gradcheck: composite expressions") {
  // A few layer-like compositions, so backward formulas are checked as they are combined.
  std::vector<Case> cases = {
      {"linear + tanh + mean", [](const V& x) { return tg::tanh(tg::matmul(x[0], x[1]) + x[2]).mean(); },
       {{N({4, 3}), N({3, 5}), N({5})}, {T(N({4, 3})), O(N({3, 5})), St(N({5}))}}},
      {"layernorm-like", [](const V& x) {
         Tensor m = x[0].mean(-1, true);
         Tensor d = x[0] - m;
         return d * tg::rsqrt(d.var(-1, 0, true) + 1e-5);
       },
       {{N({3, 5})}, {T(N({5, 3}))}}},
      {"cross-entropy-like", [](const V& x) {
         Tensor lp = tg::log_softmax(x[0], 1);
         return -tg::gather(lp, 1, idx({1, 0, 3}, {3, 1})).mean();
       },
       {{N({3, 4})}, {T(N({3, 4}))}}},
      {"attention-like", [](const V& x) {
         Tensor s = tg::matmul(x[0], x[1].transpose(-1, -2)) / 2.0;
         s = tg::masked_fill(s, tg::triu(tg::ones({3, 3}, tg::kBool), 1), -1e9);
         return tg::matmul(tg::softmax(s, -1), x[2]);
       },
       {{N({2, 3, 4}), N({2, 3, 4}), N({2, 3, 2})}}},
  };
  run_cases(cases);
}

}  // TEST_SUITE
