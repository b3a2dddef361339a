// Reductions over any dims with keepdim (sum, mean, amax/amin, max/min with indices, argmax/argmin, var,
// logsumexp), cumsum, and the fused softmax/log_softmax, each with its backward.
#include <algorithm>
#include <cmath>

#include "autograd/functions/common.h"

namespace tg {

using autograd::Node;

namespace {

// Sorted unique wrapped dims; an empty list means every dim, as in PyTorch's sum(dim=[]).
Shape normalize_dims(const Tensor& x, const Shape& dims, const char* op) {
  Shape d;
  if (dims.empty()) {
    for (int64_t i = 0; i < x.dim(); ++i) d.push_back(i);
    return d;
  }
  for (int64_t v : dims) d.push_back(x.dim() == 0 ? (wrap_dim(v, 0, op), 0) : wrap_dim(v, x.dim(), op));
  std::sort(d.begin(), d.end());
  TG_CHECK(std::adjacent_find(d.begin(), d.end()) == d.end(), "{}: dim appears more than once in {}", op,
           shape_str(dims));
  if (x.dim() == 0) d.clear();
  return d;
}

Shape keepdim_shape(const Tensor& x, const Shape& dims) {
  Shape s = x.sizes();
  for (int64_t d : dims) s[d] = 1;
  return s;
}

Shape squeezed_shape(const Tensor& x, const Shape& dims) {
  Shape s;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) s.push_back(x.size(i));
  return s;
}

int64_t reduced_count(const Tensor& x, const Shape& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= x.size(d);
  return n;
}

// Runs a reduction kernel, returning the keepdim-shaped result.
Tensor run_reduce(ReduceOp op, const Tensor& x, const Shape& dims, DType out_dtype) {
  Tensor out = empty(keepdim_shape(x, dims), x.options().dtype(out_dtype));
  backend_for(x).reduce(op, x, dims, out);
  return out;
}

// Gradient of a reduction as seen from the input: g (shaped like the result) reshaped to keepdim form and
// broadcast back to the input's shape without copying.
Tensor expand_back(const Tensor& g, const Shape& keep, const Shape& in) { return g.reshape(keep).expand(in); }

Tensor finish(Tensor keep_out, const Tensor& x, const Shape& dims, bool keepdim) {
  return keepdim ? keep_out : keep_out.reshape(squeezed_shape(x, dims));
}

void check_nonempty(const char* op, const Tensor& x, const Shape& dims) {
  TG_CHECK(reduced_count(x, dims) > 0 || x.numel() > 0,
           "{}: cannot reduce an empty tensor (shape {}) over dims {}", op, shape_str(x.sizes()), shape_str(dims));
  for (int64_t d : dims)
    TG_CHECK(x.size(d) > 0, "{}: cannot reduce over dim {} of size 0 (shape {})", op, d, shape_str(x.sizes()));
}

// amax/amin with the gradient shared evenly among ties (PyTorch's rule for amax, max() and min()).
Tensor extremum(const char* name, ReduceOp op, const Tensor& x, const Shape& dims_in, bool keepdim) {
  detail::check_defined(name, x);
  Shape dims = normalize_dims(x, dims_in, name);
  check_nonempty(name, x, dims);
  TG_CHECK(x.dtype() != kBool, "{}: bool tensors are not supported", name);
  Tensor keep = run_reduce(op, x, dims, x.dtype());
  Tensor out = finish(keep, x, dims, keepdim);
  if (autograd::needs_grad({x}))
    autograd::record(name, out, {x}, {x, keep}, [keepshape = keep.sizes()](const Tensor& g, const Node& n) {
      Tensor xv = n.saved_tensor(0), m = n.saved_tensor(1);
      Tensor mask = eq(xv, m).to(xv.dtype());
      Shape all;
      for (int64_t d = 0; d < xv.dim(); ++d)
        if (keepshape[d] == 1 && xv.size(d) != 1) all.push_back(d);
      Tensor count = all.empty() ? mask : mask.sum(all, true);
      return std::vector<Tensor>{mask / count * g.reshape(keepshape)};
    });
  return out;
}

// max/min over one dim: values and indices; the gradient goes to the chosen index.
std::tuple<Tensor, Tensor> extremum_dim(const char* name, ReduceOp argop, const Tensor& x, int64_t dim, bool keepdim) {
  detail::check_defined(name, x);
  Shape dims = normalize_dims(x, {dim}, name);
  check_nonempty(name, x, dims);
  TG_CHECK(x.dtype() != kBool, "{}: bool tensors are not supported", name);
  if (x.dim() == 0) return {x, zeros({}, kInt64)};
  Tensor idx = run_reduce(argop, x, dims, kInt64);
  Tensor vals = empty(idx.sizes(), x.options());
  backend_for(x).gather(x, dims[0], idx, vals);
  Tensor out = finish(vals, x, dims, keepdim);
  if (autograd::needs_grad({x}))
    autograd::record(name, out, {x}, {idx}, [in = x.sizes(), d = dims[0], ks = idx.sizes()](const Tensor& g, const Node& n) {
      Tensor i = n.saved_tensor(0);
      Tensor gx = zeros(in, g.options());
      backend_for(gx).scatter_add(gx, d, i, g.reshape(ks).contiguous());
      return std::vector<Tensor>{gx};
    });
  return {out, finish(idx, x, dims, keepdim)};
}

}  // namespace

Tensor sum(const Tensor& x, const Shape& dims_in, bool keepdim) {
  detail::check_defined("sum", x);
  Shape dims = normalize_dims(x, dims_in, "sum");
  Tensor in = is_floating(x.dtype()) ? x : x.to(kInt64);
  Tensor keep = run_reduce(ReduceOp::Sum, in, dims, in.dtype());
  Tensor out = finish(keep, x, dims, keepdim);
  if (autograd::needs_grad({x}))
    autograd::record("sum", out, {x}, {}, [keepshape = keep.sizes(), in = x.sizes()](const Tensor& g, const Node&) {
      return std::vector<Tensor>{expand_back(g, keepshape, in)};
    });
  return out;
}

Tensor sum(const Tensor& x) { return sum(x, Shape{}, false); }

Tensor mean(const Tensor& x, const Shape& dims_in, bool keepdim) {
  detail::check_defined("mean", x);
  TG_CHECK(is_floating(x.dtype()), "mean: expected a floating dtype, got {}; convert with .to(tg::kFloat32)",
           dtype_name(x.dtype()));
  Shape dims = normalize_dims(x, dims_in, "mean");
  return div(sum(x, dims, keepdim), static_cast<double>(reduced_count(x, dims)));
}

Tensor mean(const Tensor& x) { return mean(x, Shape{}, false); }

Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) { return extremum("amax", ReduceOp::Max, x, dims, keepdim); }
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) { return extremum("amin", ReduceOp::Min, x, dims, keepdim); }
Tensor max(const Tensor& x) { return extremum("max", ReduceOp::Max, x, {}, false); }
Tensor min(const Tensor& x) { return extremum("min", ReduceOp::Min, x, {}, false); }

std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return extremum_dim("max", ReduceOp::ArgMax, x, dim, keepdim);
}
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return extremum_dim("min", ReduceOp::ArgMin, x, dim, keepdim);
}

Tensor argmax(const Tensor& x) {
  detail::check_defined("argmax", x);
  return argmax(x.reshape({-1}), 0, false);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  detail::check_defined("argmax", x);
  Shape dims = normalize_dims(x, {dim}, "argmax");
  check_nonempty("argmax", x, dims);
  return finish(run_reduce(ReduceOp::ArgMax, x, dims, kInt64), x, dims, keepdim);
}

Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  detail::check_defined("argmin", x);
  Shape dims = normalize_dims(x, {dim}, "argmin");
  check_nonempty("argmin", x, dims);
  return finish(run_reduce(ReduceOp::ArgMin, x, dims, kInt64), x, dims, keepdim);
}

Tensor var(const Tensor& x, const Shape& dims_in, int64_t correction, bool keepdim) {
  detail::check_defined("var", x);
  TG_CHECK(is_floating(x.dtype()), "var: expected a floating dtype, got {}", dtype_name(x.dtype()));
  Shape dims = normalize_dims(x, dims_in, "var");
  int64_t n = reduced_count(x, dims);
  Tensor d = x - mean(x, dims, true);  // two passes: stable where E[x^2] - E[x]^2 is not
  double denom = static_cast<double>(std::max<int64_t>(n - correction, 0));
  return div(sum(d * d, dims, keepdim), denom);
}

Tensor logsumexp(const Tensor& x, const Shape& dims_in, bool keepdim) {
  detail::check_defined("logsumexp", x);
  TG_CHECK(is_floating(x.dtype()), "logsumexp: expected a floating dtype, got {}", dtype_name(x.dtype()));
  Shape dims = normalize_dims(x, dims_in, "logsumexp");
  if (x.numel() == 0) return log(sum(exp(x), dims, keepdim));
  Tensor m;
  {
    NoGradGuard g;  // the shift cancels in the gradient; keep it off the tape
    m = amax(x, dims, true);
    m = where(logical_not(eq(abs(m), std::numeric_limits<double>::infinity())), m, 0.0);
  }
  Tensor r = log(sum(exp(x - m), dims, true)) + m;
  return keepdim ? r : r.reshape(squeezed_shape(x, dims));
}

Tensor cumsum(const Tensor& x, int64_t dim) {
  detail::check_defined("cumsum", x);
  Tensor in = is_floating(x.dtype()) ? x : x.to(kInt64);
  if (x.dim() == 0) return in.clone();
  int64_t d = wrap_dim(dim, x.dim(), "cumsum");
  Tensor out = empty(in.sizes(), in.options());
  backend_for(x).cumsum(in, d, false, out);
  if (autograd::needs_grad({x}))
    autograd::record("cumsum", out, {x}, {}, [d](const Tensor& g, const Node&) {
      Tensor gx = empty(g.sizes(), g.options());
      backend_for(g).cumsum(g, d, /*reverse=*/true, gx);
      return std::vector<Tensor>{gx};
    });
  return out;
}

namespace {
Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
  detail::check_defined(name, x);
  Tensor in = is_floating(x.dtype()) ? x : x.to(kFloat32);
  if (x.dim() == 0) {  // as a 1-element row, so that the result is recorded like any other
    wrap_dim(dim, 0, name);
    return softmax_impl(name, x.reshape({1}), 0, log).reshape({});
  }
  int64_t d = wrap_dim(dim, x.dim(), name);
  Tensor out = empty(in.sizes(), in.options());
  if (out.numel() > 0) backend_for(in).softmax(in, d, log, out);
  if (autograd::needs_grad({x}))
    autograd::record(name, out, {x}, {out}, [d, log](const Tensor& g, const Node& n) {
      Tensor y = n.saved_tensor(0);
      Tensor gx = empty(y.sizes(), y.options());
      if (gx.numel() > 0) backend_for(y).softmax_backward(y, g, d, log, gx);
      return std::vector<Tensor>{gx};
    });
  return out;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

}  // namespace tg
