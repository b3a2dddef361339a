// Property-based tests (RapidCheck): laws that hold for every input, checked on random shapes, layouts and values
// against naive loops. Each rc::check runs 100 random cases and shrinks a failure to a small one.
#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

#include "tapegrad.h"

namespace {

using tg::Shape;
using tg::Tensor;

// ---- generators

// A shape of rank in [min_rank, max_rank] with sizes in [min_size, max_size].
rc::Gen<Shape> gen_shape(int min_rank, int max_rank, int64_t min_size = 1, int64_t max_size = 4) {
  return rc::gen::mapcat(rc::gen::inRange(min_rank, max_rank + 1), [=](int r) {
    return rc::gen::container<Shape>(static_cast<size_t>(r), rc::gen::inRange<int64_t>(min_size, max_size + 1));
  });
}

// Small integers as doubles: sums are exact, and ties happen.
std::vector<double> gen_values(int64_t n, int lo = -9, int hi = 9) {
  std::vector<int> v = *rc::gen::container<std::vector<int>>(static_cast<size_t>(n), rc::gen::inRange(lo, hi + 1));
  return std::vector<double>(v.begin(), v.end());
}

// A random permutation of [0, n).
Shape gen_permutation(int64_t n) {
  std::vector<int> keys = *rc::gen::container<std::vector<int>>(static_cast<size_t>(n), rc::gen::arbitrary<int>());
  Shape p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  std::stable_sort(p.begin(), p.end(), [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  return p;
}

// The same logical values in a non-contiguous layout (dims stored in reverse order), chosen at random.
Tensor maybe_noncontiguous(const Tensor& t) {
  if (t.dim() < 2 || !*rc::gen::arbitrary<bool>()) return t;
  Shape rev(static_cast<size_t>(t.dim()));
  std::iota(rev.rbegin(), rev.rend(), 0);
  return t.permute(rev).contiguous().permute(rev);
}

// A float64 tensor of shape s with random values, in a random layout.
Tensor gen_tensor(const Shape& s, int lo = -9, int hi = 9) {
  return maybe_noncontiguous(tg::tensor(gen_values(tg::shape_numel(s), lo, hi), s));
}

// A random chain of up to 5 views of base (transpose, narrow, slice with step, select, unsqueeze + expand,
// permute, flatten).
Tensor gen_view(const Tensor& base) {
  Tensor v = base;
  int steps = *rc::gen::inRange(0, 6);
  for (int k = 0; k < steps; ++k) {
    int64_t r = v.dim();
    int op = *rc::gen::inRange(0, 7);
    if (r == 0) op = 4;  // only unsqueeze applies to a 0-d view
    int64_t d = r > 0 ? *rc::gen::inRange<int64_t>(0, r) : 0;
    switch (op) {
      case 0: v = v.transpose(d, *rc::gen::inRange<int64_t>(0, r)); break;
      case 1: {
        int64_t n = v.size(d), start = *rc::gen::inRange<int64_t>(0, n + 1);
        v = v.narrow(d, start, *rc::gen::inRange<int64_t>(0, n - start + 1));
        break;
      }
      case 2: {
        int64_t n = v.size(d);
        v = v.slice(d, *rc::gen::inRange<int64_t>(0, n + 1), n, *rc::gen::inRange<int64_t>(1, 4));
        break;
      }
      case 3:
        if (v.size(d) > 0) v = v.select(d, *rc::gen::inRange<int64_t>(0, v.size(d)));
        break;
      case 4: {
        int64_t at = *rc::gen::inRange<int64_t>(0, r + 1);
        v = v.unsqueeze(at);
        Shape e = v.sizes();
        e[at] = *rc::gen::inRange<int64_t>(1, 4);
        v = v.expand(e);
        break;
      }
      case 5: v = v.permute(gen_permutation(r)); break;
      case 6: v = v.flatten(d, *rc::gen::inRange<int64_t>(d, r)); break;  // may copy: still a valid tensor
    }
  }
  return v;
}

// Same shape and values within tolerance, NaN matching NaN (the mean of an empty tensor is NaN).
bool same_values(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.sizes() != b.sizes()) return false;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    if (!(x[i] == y[i] || std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i]))) return false;
  }
  return true;
}

// ---- naive index arithmetic

Shape unravel(int64_t i, const Shape& s) {
  Shape idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}

int64_t ravel(const Shape& idx, const Shape& s) {
  int64_t i = 0;
  for (size_t d = 0; d < s.size(); ++d) i = i * s[d] + idx[d];
  return i;
}

// Element at logical row-major position i, read straight from the storage through sizes, strides and offset.
double strided_read(const Tensor& t, int64_t i) {
  const double* base = static_cast<const double*>(t.storage()->data);
  Shape idx = unravel(i, t.sizes());
  int64_t off = t.storage_offset();
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  return base[off];
}

}  // namespace

TEST_SUITE("properties") {

TEST_CASE("property: broadcasting add equals a naive loop") {
  CHECK(rc::check("add broadcasts as NumPy", [] {
    Shape full = *gen_shape(0, 4);
    auto derive = [&] {  // drop some leading dims, set some others to 1
      size_t drop = *rc::gen::inRange<size_t>(0, full.size() + 1);
      Shape s(full.begin() + static_cast<int64_t>(drop), full.end());
      for (int64_t& d : s)
        if (*rc::gen::arbitrary<bool>()) d = 1;
      return s;
    };
    Shape sa = derive(), sb = derive();
    std::vector<double> va = gen_values(tg::shape_numel(sa)), vb = gen_values(tg::shape_numel(sb));
    Tensor a = maybe_noncontiguous(tg::tensor(va, sa)), b = maybe_noncontiguous(tg::tensor(vb, sb));
    Tensor c = a + b;
    // the broadcast shape, naively
    size_t n = std::max(sa.size(), sb.size());
    Shape so(n);
    auto dim_of = [n](const Shape& s, size_t i) { return i < n - s.size() ? int64_t{1} : s[i - (n - s.size())]; };
    for (size_t i = 0; i < n; ++i) so[i] = std::max(dim_of(sa, i), dim_of(sb, i));
    RC_ASSERT(c.sizes() == so);
    std::vector<double> got = c.to_vector<double>();
    for (int64_t i = 0; i < tg::shape_numel(so); ++i) {
      Shape idx = unravel(i, so);
      auto pick = [&](const Shape& s) {
        Shape j(s.size());
        for (size_t d = 0; d < s.size(); ++d) j[d] = s[d] == 1 ? 0 : idx[n - s.size() + d];
        return ravel(j, s);
      };
      RC_ASSERT(got[i] == va[pick(sa)] + vb[pick(sb)]);
    }
  }));
}

TEST_CASE("property: permute round trips and moves elements as a naive loop") {
  CHECK(rc::check("permute(p) then permute(inverse(p)) is the identity", [] {
    Shape s = *gen_shape(1, 4);
    Tensor x = gen_tensor(s);
    Shape p = gen_permutation(x.dim());
    Shape inv(p.size());
    for (size_t i = 0; i < p.size(); ++i) inv[p[i]] = static_cast<int64_t>(i);
    Tensor y = x.permute(p);
    for (size_t i = 0; i < p.size(); ++i) RC_ASSERT(y.size(static_cast<int64_t>(i)) == x.size(p[i]));
    std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
    for (int64_t i = 0; i < y.numel(); ++i) {
      Shape yi = unravel(i, y.sizes()), xi(yi.size());
      for (size_t d = 0; d < p.size(); ++d) xi[p[d]] = yi[d];
      RC_ASSERT(yv[i] == xv[ravel(xi, s)]);
    }
    Tensor z = y.permute(inv);
    RC_ASSERT(z.sizes() == x.sizes());
    RC_ASSERT(z.strides() == x.strides());
    RC_ASSERT((z.data_ptr() == x.data_ptr()));
    RC_ASSERT(tg::equal(z, x));
  }));
}

TEST_CASE("property: reshape round trips") {
  CHECK(rc::check("reshape(-1) then back, and through any factorisation", [] {
    Shape s = *gen_shape(0, 4, 0, 4);
    Tensor x = gen_tensor(s);
    Tensor f = x.reshape({-1});
    RC_ASSERT(f.dim() == 1);
    RC_ASSERT(f.numel() == x.numel());
    RC_ASSERT(f.to_vector<double>() == x.to_vector<double>());
    Tensor back = f.reshape(s);
    RC_ASSERT(back.sizes() == s);
    RC_ASSERT(tg::equal(back, x));
    if (x.numel() > 0) {
      std::vector<int64_t> divisors;
      for (int64_t k = 1; k <= x.numel(); ++k)
        if (x.numel() % k == 0) divisors.push_back(k);
      int64_t k = *rc::gen::elementOf(divisors);
      Tensor r = x.reshape({-1, k});
      RC_ASSERT(r.sizes() == (Shape{x.numel() / k, k}));
      RC_ASSERT(r.to_vector<double>() == x.to_vector<double>());
      RC_ASSERT(tg::equal(r.reshape(s), x));
    }
    if (x.is_contiguous()) RC_ASSERT((f.data_ptr() == x.data_ptr() || x.numel() == 0));  // a view, not a copy
  }));
}

TEST_CASE("property: transpose twice is the identity") {
  CHECK(rc::check("x.transpose(a, b).transpose(a, b) == x", [] {
    Shape s = *gen_shape(1, 4);
    Tensor x = gen_tensor(s);
    int64_t r = x.dim();
    int64_t a = *rc::gen::inRange<int64_t>(-r, r), b = *rc::gen::inRange<int64_t>(-r, r);
    Tensor t = x.transpose(a, b);
    Tensor tt = t.transpose(a, b);
    RC_ASSERT(tt.sizes() == x.sizes());
    RC_ASSERT(tt.strides() == x.strides());
    RC_ASSERT(tg::equal(tt, x));
    // and t itself holds x's elements with the two indices swapped
    int64_t da = a < 0 ? a + r : a, db = b < 0 ? b + r : b;
    std::vector<double> xv = x.to_vector<double>(), tv = t.to_vector<double>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      Shape ti = unravel(i, t.sizes());
      std::swap(ti[da], ti[db]);
      RC_ASSERT(tv[i] == xv[ravel(ti, s)]);
    }
  }));
}

TEST_CASE("property: reductions over a random dim equal a naive loop") {
  CHECK(rc::check("sum, mean, max, min, amax over one dim", [] {
    Shape s = *gen_shape(1, 4);
    Tensor x = gen_tensor(s);
    int64_t r = x.dim();
    int64_t dim = *rc::gen::inRange<int64_t>(-r, r);
    int64_t d = dim < 0 ? dim + r : dim;
    bool keep = *rc::gen::arbitrary<bool>();
    Shape ks = s;
    ks[d] = 1;
    Shape out_shape = ks;
    if (!keep) out_shape.erase(out_shape.begin() + d);
    std::vector<double> xv = x.to_vector<double>();
    std::vector<double> sum(tg::shape_numel(ks), 0), mx(sum.size(), -1e300), mn(sum.size(), 1e300);
    std::vector<int64_t> arg(sum.size(), 0);
    for (int64_t i = 0; i < x.numel(); ++i) {
      Shape idx = unravel(i, s);
      int64_t k = idx[d];
      idx[d] = 0;
      int64_t o = ravel(idx, ks);
      sum[o] += xv[i];
      if (xv[i] > mx[o]) {
        mx[o] = xv[i];
        arg[o] = k;
      }
      mn[o] = std::min(mn[o], xv[i]);
    }
    Tensor ts = x.sum(dim, keep), tm = x.mean(dim, keep), ta = tg::amax(x, {dim}, keep);
    auto [tmax, tidx] = x.max(dim, keep);
    Tensor tmin = std::get<0>(x.min(dim, keep));
    for (const Tensor& t : {ts, tm, ta, tmax, tidx, tmin}) RC_ASSERT(t.sizes() == out_shape);
    std::vector<double> vs = ts.to_vector<double>(), vm = tm.to_vector<double>(), va = ta.to_vector<double>(),
                        vmax = tmax.to_vector<double>(), vmin = tmin.to_vector<double>();
    std::vector<int64_t> vi = tidx.to_vector<int64_t>();
    for (size_t o = 0; o < sum.size(); ++o) {
      RC_ASSERT(vs[o] == sum[o]);
      RC_ASSERT(std::abs(vm[o] - sum[o] / static_cast<double>(s[d])) < 1e-12);
      RC_ASSERT(vmax[o] == mx[o]);
      RC_ASSERT(va[o] == mx[o]);
      RC_ASSERT(vmin[o] == mn[o]);
      RC_ASSERT(vi[o] == arg[o]);  // the first index of the maximum
    }
  }));
  CHECK(rc::check("sum over a random set of dims", [] {
    Shape s = *gen_shape(0, 4);
    Tensor x = gen_tensor(s);
    Shape dims;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (*rc::gen::arbitrary<bool>()) dims.push_back(d);
    bool keep = *rc::gen::arbitrary<bool>();
    Shape ks = s;
    for (int64_t d : dims) ks[d] = 1;
    if (dims.empty()) std::fill(ks.begin(), ks.end(), 1);  // an empty list reduces every dim
    std::vector<double> xv = x.to_vector<double>(), expect(tg::shape_numel(ks), 0);
    for (int64_t i = 0; i < x.numel(); ++i) {
      Shape idx = unravel(i, s);
      for (size_t d = 0; d < s.size(); ++d)
        if (ks[d] == 1) idx[d] = 0;
      expect[ravel(idx, ks)] += xv[i];
    }
    Tensor t = x.sum(dims, keep);
    RC_ASSERT(t.numel() == static_cast<int64_t>(expect.size()));
    if (keep) RC_ASSERT(t.sizes() == ks);
    RC_ASSERT(t.to_vector<double>() == expect);
  }));
}

TEST_CASE("property: softmax rows sum to one and lie in [0, 1]") {
  CHECK(rc::check("softmax and log_softmax over a random dim", [] {
    Shape s = *gen_shape(1, 4, 1, 6);
    Tensor x = gen_tensor(s, -200, 200) * 0.5;  // up to +-100: needs the max shift
    bool f32 = *rc::gen::arbitrary<bool>();
    if (f32) x = x.to(tg::kFloat32);
    const double tol = f32 ? 1e-5 : 1e-12;
    int64_t r = x.dim();
    int64_t dim = *rc::gen::inRange<int64_t>(-r, r);
    Tensor y = tg::softmax(x, dim);
    RC_ASSERT(y.sizes() == s);
    for (double v : y.to_vector<double>()) RC_ASSERT(v >= 0.0 && v <= 1.0);
    for (double v : y.sum(dim).to_vector<double>()) RC_ASSERT(std::abs(v - 1.0) < tol);
    Tensor ly = tg::log_softmax(x, dim);
    for (double v : ly.to_vector<double>()) RC_ASSERT(v <= 0.0);
    for (double v : tg::exp(ly).sum(dim).to_vector<double>()) RC_ASSERT(std::abs(v - 1.0) < tol);
    // softmax is shift-invariant along its dim
    Tensor shifted = tg::softmax(x + tg::amax(x, {dim}, true) * 3.0, dim);
    RC_ASSERT(tg::allclose(shifted, y, 1e-4, f32 ? 1e-5 : 1e-10));
  }));
}

TEST_CASE("property: the gradient of a sum is ones") {
  CHECK(rc::check("d sum(view(x)) / dx == 1 for any shape and view (times the expansion)", [] {
    Shape s = *gen_shape(0, 4, 0, 4);
    Tensor x = gen_tensor(s).requires_grad_();
    Tensor v = x;
    if (x.dim() > 0 && *rc::gen::arbitrary<bool>()) v = x.permute(gen_permutation(x.dim()));
    if (*rc::gen::arbitrary<bool>()) v = v.reshape({-1});
    double copies = 1;  // an expanded view counts each element that many times
    if (*rc::gen::arbitrary<bool>()) {
      v = v.unsqueeze(0);
      Shape e = v.sizes();
      e[0] = *rc::gen::inRange<int64_t>(1, 4);
      copies = static_cast<double>(e[0]);
      v = v.expand(e);
    }
    v.sum().backward();
    RC_ASSERT(x.grad().defined());
    RC_ASSERT(x.grad().sizes() == s);
    for (double g : x.grad().to_vector<double>()) RC_ASSERT(g == copies);
  }));
}

TEST_CASE("property: contiguous() of any view reads the elements the view's strides point at") {
  CHECK(rc::check("a random chain of views, then contiguous()", [] {
    Shape s = *gen_shape(1, 4, 1, 5);
    Tensor base = tg::arange(0, static_cast<double>(tg::shape_numel(s)), 1, tg::kFloat64).reshape(s);
    Tensor v = gen_view(base);
    Tensor c = v.contiguous();
    RC_ASSERT(c.is_contiguous());
    RC_ASSERT(c.sizes() == v.sizes());
    std::vector<double> cv = c.to_vector<double>(), vv = v.to_vector<double>();
    RC_ASSERT(static_cast<int64_t>(cv.size()) == v.numel());
    for (int64_t i = 0; i < v.numel(); ++i) {
      double e = strided_read(v, i);
      RC_ASSERT(cv[i] == e);
      RC_ASSERT(vv[i] == e);
    }
  }));
}

TEST_CASE("property: every op gives the same values on a strided view as on its contiguous copy") {
  CHECK(rc::check("f(view) == f(view.contiguous())", [] {
    Shape s = *gen_shape(1, 4, 1, 5);
    bool f32 = *rc::gen::arbitrary<bool>();
    Tensor base = tg::tensor(gen_values(tg::shape_numel(s), -20, 20), s) * 0.25;
    if (f32) base = base.to(tg::kFloat32);
    Tensor v = gen_view(base);
    Tensor c = v.contiguous().clone();  // the same values, dense and owned
    RC_ASSERT(tg::equal(v, c));
    const int64_t r = v.dim();
    const int64_t d = r > 0 ? *rc::gen::inRange<int64_t>(0, r) : 0;
    const bool has_dim = r > 0, nonempty = v.numel() > 0;
    using F = std::function<Tensor(const Tensor&)>;
    std::vector<std::pair<const char*, F>> ops = {
        {"neg", [](const Tensor& x) { return -x; }},
        {"abs", [](const Tensor& x) { return tg::abs(x); }},
        {"exp", [](const Tensor& x) { return tg::exp(x); }},
        {"log", [](const Tensor& x) { return tg::log(tg::abs(x) + 1.0); }},
        {"tanh", [](const Tensor& x) { return tg::tanh(x); }},
        {"sigmoid", [](const Tensor& x) { return tg::sigmoid(x); }},
        {"relu", [](const Tensor& x) { return tg::relu(x); }},
        {"gelu", [](const Tensor& x) { return tg::gelu(x) + tg::gelu(x, "tanh"); }},
        {"silu", [](const Tensor& x) { return tg::silu(x); }},
        {"softplus", [](const Tensor& x) { return tg::softplus(x, 2.0, 3.0); }},
        {"clamp", [](const Tensor& x) { return tg::clamp(x, -1.0, 2.0); }},
        {"pow", [](const Tensor& x) { return tg::pow(x, 3.0); }},
        {"x * x", [](const Tensor& x) { return x * x; }},
        {"x - x.contiguous()", [](const Tensor& x) { return x - x.contiguous() * 0.5; }},
        {"x / 3 + 1", [](const Tensor& x) { return x / 3.0 + 1.0; }},
        {"maximum", [](const Tensor& x) { return tg::maximum(x, x * -1.0); }},
        {"where", [](const Tensor& x) { return tg::where(x > 0.0, x, 1.0 - x); }},
        {"compare", [](const Tensor& x) { return (x >= 0.5).to(x.dtype()); }},
        {"to(int64)", [](const Tensor& x) { return (x * 4.0).to(tg::kInt64); }},
        {"sum()", [](const Tensor& x) { return x.sum(); }},
        {"mean()", [](const Tensor& x) { return x.mean(); }},
    };
    if (has_dim) {
      ops.push_back({"cat", [](const Tensor& x) { return tg::cat({x, x * 2.0}, -1); }});
      ops.push_back({"sum(d)", [d](const Tensor& x) { return x.sum(d, true); }});
      ops.push_back({"cumsum(d)", [d](const Tensor& x) { return x.cumsum(d); }});
      ops.push_back({"softmax(d)", [d](const Tensor& x) { return x.softmax(d); }});
      ops.push_back({"log_softmax(d)", [d](const Tensor& x) { return x.log_softmax(d); }});
      ops.push_back({"index_select(d)", [d](const Tensor& x) {
                       return x.size(d) > 0 ? x.index_select(d, tg::zeros({2}, tg::kInt64) + (x.size(d) - 1)) : x;
                     }});
      if (nonempty) {
        ops.push_back({"amax(d)", [d](const Tensor& x) { return tg::amax(x, {d}); }});
        ops.push_back({"max(d)", [d](const Tensor& x) { return std::get<0>(x.max(d)); }});
        ops.push_back({"argmin(d)", [d](const Tensor& x) { return x.argmin(d); }});
        ops.push_back({"logsumexp(d)", [d](const Tensor& x) { return x.logsumexp(d); }});
        ops.push_back({"max()", [](const Tensor& x) { return x.max(); }});
      }
    }
    if (r >= 2) {
      ops.push_back({"matmul", [](const Tensor& x) { return tg::matmul(x, x.transpose(-1, -2)); }});
      ops.push_back({"tril", [](const Tensor& x) { return tg::tril(x, 1); }});
    }
    for (auto& [name, f] : ops) {
      Tensor a = f(v), b = f(c);
      RC_LOG() << name << "\n";
      RC_ASSERT(a.sizes() == b.sizes());
      RC_ASSERT(a.dtype() == b.dtype());
      RC_ASSERT(same_values(a, b, f32 ? 1e-6 : 1e-13, 1e-12));
    }
  }));
}

TEST_CASE("large non-contiguous tensors (the threaded loop paths) match their contiguous copies") {
  tg::manual_seed(11);
  Tensor big = tg::randn({700, 300}, tg::kFloat64);
  for (Tensor v : {big.t(), big.slice(0, 1, 700, 2), big.unsqueeze(0).expand({2, 700, 300}).transpose(0, 2)}) {
    Tensor c = v.contiguous();
    CHECK(tg::equal(tg::exp(v), tg::exp(c)));
    CHECK(tg::equal(v * v + 1.0, c * c + 1.0));
    CHECK(tg::allclose(v.sum(0), c.sum(0), 1e-12, 1e-10));
    CHECK(tg::allclose(v.sum(-1), c.sum(-1), 1e-12, 1e-10));
    CHECK(tg::allclose(v.sum(), c.sum(), 1e-12, 1e-9));
    CHECK(tg::equal(tg::amax(v, {-1}), tg::amax(c, {-1})));
    CHECK(tg::allclose(v.softmax(0), c.softmax(0), 1e-12, 1e-15));
    CHECK(tg::allclose(v.cumsum(-1), c.cumsum(-1), 1e-12, 1e-9));
  }
  // a row broadcast against a transposed matrix
  Tensor row = tg::randn({700}, tg::kFloat64);
  CHECK(tg::equal(big.t() + row, big.t().contiguous() + row));
}

TEST_CASE("size-0 tensors are contiguous whatever their strides") {
  for (Shape s : {Shape{0}, Shape{1, 2, 0}, Shape{0, 3}, Shape{2, 0, 3}}) {
    CHECK(tg::empty(s).is_contiguous());
    CHECK(tg::zeros(s).contiguous().is_contiguous());
  }
  Tensor x = tg::zeros({1, 2, 3}).narrow(2, 0, 0);
  CHECK(x.is_contiguous());
  CHECK(tg::zeros({3, 0}).t().is_contiguous());
}

TEST_CASE("property: matmul equals a naive triple loop") {
  CHECK(rc::check("[B, M, K] @ [K, N] and batched", [] {
    int64_t B = *rc::gen::inRange<int64_t>(1, 4), M = *rc::gen::inRange<int64_t>(0, 5),
            K = *rc::gen::inRange<int64_t>(0, 5), N = *rc::gen::inRange<int64_t>(0, 5);
    bool batched_b = *rc::gen::arbitrary<bool>();
    Tensor a = gen_tensor({B, M, K});
    Shape sb = batched_b ? Shape{B, K, N} : Shape{K, N};
    Tensor b = gen_tensor(sb);
    Tensor c = tg::matmul(a, b);
    RC_ASSERT(c.sizes() == (Shape{B, M, N}));
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
    for (int64_t p = 0; p < B; ++p)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += av[(p * M + i) * K + k] * bv[((batched_b ? p : 0) * K + k) * N + j];
          RC_ASSERT(cv[(p * M + i) * N + j] == acc);
        }
  }));
}

}  // TEST_SUITE
