// Views: new sizes/strides/offset over the same storage, no copy. Each records a backward that maps the
// gradient back to the input's geometry.
#include <algorithm>
#include <numeric>
#include <optional>

#include "autograd/functions/common.h"

namespace tg {

using autograd::Node;
using detail::raw_view;

namespace {

// Resolves a single -1 in a requested shape; op names the caller.
Shape infer_shape(const Shape& req, int64_t numel, const char* op, const Shape& from) {
  Shape s = req;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      TG_CHECK(infer < 0, "{}: only one dimension can be inferred, got {}", op, shape_str(req));
      infer = static_cast<int64_t>(i);
    } else {
      TG_CHECK(s[i] >= 0, "{}: invalid shape {}", op, shape_str(req));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    TG_CHECK(known != 0 && numel % known == 0, "{}: shape {} is invalid for input of shape {} ({} elements)", op,
             shape_str(req), shape_str(from), numel);
    s[infer] = numel / known;
  }
  TG_CHECK(shape_numel(s) == numel, "{}: shape {} is invalid for input of shape {} ({} elements)", op, shape_str(req),
           shape_str(from), numel);
  return s;
}

// Strides that view (sizes, strides) as new_sizes without a copy, or nothing (PyTorch's computeStride).
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& new_sizes) {
  if (shape_numel(sizes) == 0) return contiguous_strides(new_sizes);
  Shape out(new_sizes.size());
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) {
    // remaining new dims are all size 1
    for (; view_d >= 0; --view_d) {
      if (new_sizes[view_d] != 1) return std::nullopt;
      out[view_d] = 1;
    }
  }
  return out;
}

Tensor reshape_to_input(const Tensor& g, const Shape& in) { return g.reshape(in); }

// Records a view whose backward reshapes the gradient to the input's shape.
Tensor record_reshape_like(const char* op, const Tensor& x, Tensor out) {
  if (autograd::needs_grad({x})) {
    autograd::record(op, out, {x}, {}, [in = x.sizes()](const Tensor& g, const Node&) {
      return std::vector<Tensor>{reshape_to_input(g, in)};
    });
  }
  return out;
}

}  // namespace

Tensor view(const Tensor& x, const Shape& sizes) {
  detail::check_defined("view", x);
  Shape s = infer_shape(sizes, x.numel(), "view", x.sizes());
  auto st = x.is_contiguous() ? std::optional<Shape>(contiguous_strides(s)) : view_strides(x.sizes(), x.strides(), s);
  TG_CHECK(st.has_value(), "view: shape {} is not compatible with the strides of input of shape {} (strides {}); use "
           "reshape", shape_str(s), shape_str(x.sizes()), shape_str(x.strides()));
  return record_reshape_like("view", x, raw_view(x, s, *st, x.storage_offset()));
}

Tensor reshape(const Tensor& x, const Shape& sizes) {
  detail::check_defined("reshape", x);
  Shape s = infer_shape(sizes, x.numel(), "reshape", x.sizes());
  if (s == x.sizes()) return x;
  auto st = x.is_contiguous() ? std::optional<Shape>(contiguous_strides(s)) : view_strides(x.sizes(), x.strides(), s);
  if (st) return record_reshape_like("reshape", x, raw_view(x, s, *st, x.storage_offset()));
  return view(x.contiguous(), s);
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  detail::check_defined("flatten", x);
  if (x.dim() == 0) return x.reshape({1});
  int64_t a = wrap_dim(start, x.dim(), "flatten"), b = wrap_dim(end, x.dim(), "flatten");
  TG_CHECK(a <= b, "flatten: start_dim {} is after end_dim {}", start, end);
  Shape s(x.sizes().begin(), x.sizes().begin() + a);
  int64_t n = 1;
  for (int64_t d = a; d <= b; ++d) n *= x.size(d);
  s.push_back(n);
  s.insert(s.end(), x.sizes().begin() + b + 1, x.sizes().end());
  return x.reshape(s);
}

Tensor permute(const Tensor& x, const Shape& dims) {
  detail::check_defined("permute", x);
  const int64_t n = x.dim();
  TG_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: {} dims given for a tensor of shape {}", dims.size(),
           shape_str(x.sizes()));
  Shape sizes(n), strides(n), inverse(n);
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = wrap_dim(dims[i], n, "permute");
    TG_CHECK(!seen[d], "permute: dim {} repeated in {}", d, shape_str(dims));
    seen[d] = true;
    sizes[i] = x.size(d);
    strides[i] = x.stride(d);
    inverse[d] = i;
  }
  Tensor out = raw_view(x, sizes, strides, x.storage_offset());
  if (autograd::needs_grad({x}))
    autograd::record("permute", out, {x}, {}, [inverse](const Tensor& g, const Node&) {
      return std::vector<Tensor>{g.permute(inverse)};
    });
  return out;
}

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  detail::check_defined("transpose", x);
  if (x.dim() == 0) return x;
  a = wrap_dim(a, x.dim(), "transpose");
  b = wrap_dim(b, x.dim(), "transpose");
  Shape sizes = x.sizes(), strides = x.strides();
  std::swap(sizes[a], sizes[b]);
  std::swap(strides[a], strides[b]);
  Tensor out = raw_view(x, sizes, strides, x.storage_offset());
  if (autograd::needs_grad({x}))
    autograd::record("transpose", out, {x}, {}, [a, b](const Tensor& g, const Node&) {
      return std::vector<Tensor>{g.transpose(a, b)};
    });
  return out;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  detail::check_defined("slice", x);
  TG_CHECK(x.dim() > 0, "slice: cannot slice a 0-dim tensor");
  dim = wrap_dim(dim, x.dim(), "slice");
  TG_CHECK(step > 0, "slice: step must be positive, got {}", step);
  const int64_t n = x.size(dim);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sizes = x.sizes(), strides = x.strides();
  sizes[dim] = (end - start + step - 1) / step;
  strides[dim] *= step;
  Tensor out = raw_view(x, sizes, strides, x.storage_offset() + start * x.stride(dim));
  if (autograd::needs_grad({x}))
    autograd::record("slice", out, {x}, {}, [in = x.sizes(), dim, start, end, step](const Tensor& g, const Node&) {
      Tensor gx = zeros(in, g.options());
      gx.slice(dim, start, end, step).copy_(g);
      return std::vector<Tensor>{gx};
    });
  return out;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  detail::check_defined("narrow", x);
  TG_CHECK(x.dim() > 0, "narrow: cannot narrow a 0-dim tensor");
  int64_t d = wrap_dim(dim, x.dim(), "narrow");
  const int64_t n = x.size(d);
  if (start < 0 && start >= -n) start += n;
  TG_CHECK(start >= 0 && length >= 0 && start + length <= n,
           "narrow: start {} and length {} out of range for dim {} of size {} (shape {})", start, length, d, n,
           shape_str(x.sizes()));
  return slice(x, d, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  detail::check_defined("select", x);
  TG_CHECK(x.dim() > 0, "select: cannot select from a 0-dim tensor");
  dim = wrap_dim(dim, x.dim(), "select");
  const int64_t n = x.size(dim);
  TG_CHECK(index >= -n && index < n, "select: index {} out of range for dim {} of size {} (shape {})", index, dim, n,
           shape_str(x.sizes()));
  if (index < 0) index += n;
  Shape sizes = x.sizes(), strides = x.strides();
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  Tensor out = raw_view(x, sizes, strides, x.storage_offset() + index * x.stride(dim));
  if (autograd::needs_grad({x}))
    autograd::record("select", out, {x}, {}, [in = x.sizes(), dim, index](const Tensor& g, const Node&) {
      Tensor gx = zeros(in, g.options());
      gx.select(dim, index).copy_(g);
      return std::vector<Tensor>{gx};
    });
  return out;
}

Tensor squeeze(const Tensor& x) {
  detail::check_defined("squeeze", x);
  Shape sizes, strides;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (x.size(d) != 1) {
      sizes.push_back(x.size(d));
      strides.push_back(x.stride(d));
    }
  return record_reshape_like("squeeze", x, raw_view(x, sizes, strides, x.storage_offset()));
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  detail::check_defined("squeeze", x);
  if (x.dim() == 0) return x;
  dim = wrap_dim(dim, x.dim(), "squeeze");
  if (x.size(dim) != 1) return x;
  Shape sizes = x.sizes(), strides = x.strides();
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  return record_reshape_like("squeeze", x, raw_view(x, sizes, strides, x.storage_offset()));
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  detail::check_defined("unsqueeze", x);
  dim = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape sizes = x.sizes(), strides = x.strides();
  int64_t st = dim < x.dim() ? x.stride(dim) * x.size(dim) : 1;
  sizes.insert(sizes.begin() + dim, 1);
  strides.insert(strides.begin() + dim, st);
  return record_reshape_like("unsqueeze", x, raw_view(x, sizes, strides, x.storage_offset()));
}

Tensor expand(const Tensor& x, const Shape& sizes) {
  detail::check_defined("expand", x);
  TG_CHECK(sizes.size() >= static_cast<size_t>(x.dim()),
           "expand: the number of sizes given ({}) must be at least the number of dims of shape {}", sizes.size(),
           shape_str(x.sizes()));
  size_t lead = sizes.size() - x.dim();
  Shape target = sizes, strides(sizes.size(), 0);
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i < lead) {
      TG_CHECK(sizes[i] >= 0, "expand: new leading dim {} must have a size, got {}", i, sizes[i]);
      continue;
    }
    int64_t have = x.size(static_cast<int64_t>(i - lead));
    if (sizes[i] == -1) target[i] = have;
    TG_CHECK(have == target[i] || have == 1, "expand: cannot expand shape {} to {}", shape_str(x.sizes()),
             shape_str(sizes));
    strides[i] = have == target[i] ? x.stride(static_cast<int64_t>(i - lead)) : 0;
  }
  if (target == x.sizes()) return x;
  Tensor out = raw_view(x, target, strides, x.storage_offset());
  if (autograd::needs_grad({x}))
    autograd::record("expand", out, {x}, {}, [in = x.sizes()](const Tensor& g, const Node&) {
      return std::vector<Tensor>{autograd::sum_to(g, in)};
    });
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  detail::check_defined("split", x);
  dim = wrap_dim(dim, x.dim(), "split");
  int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  TG_CHECK(total == x.size(dim), "split: sizes {} do not sum to dim {} of size {}", shape_str(sizes), dim, x.size(dim));
  std::vector<Tensor> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, dim, off, s));
    off += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  detail::check_defined("split", x);
  dim = wrap_dim(dim, x.dim(), "split");
  TG_CHECK(split_size > 0 || x.size(dim) == 0, "split: split_size must be positive, got {}", split_size);
  std::vector<int64_t> sizes;
  for (int64_t off = 0; off < x.size(dim); off += split_size) sizes.push_back(std::min(split_size, x.size(dim) - off));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  detail::check_defined("chunk", x);
  TG_CHECK(chunks > 0, "chunk: number of chunks must be positive, got {}", chunks);
  dim = wrap_dim(dim, x.dim(), "chunk");
  int64_t size = (x.size(dim) + chunks - 1) / chunks;
  return split(x, std::max<int64_t>(size, 1), dim);
}

std::vector<Tensor> unbind(const Tensor& x, int64_t dim) {
  detail::check_defined("unbind", x);
  dim = wrap_dim(dim, x.dim(), "unbind");
  std::vector<Tensor> out;
  for (int64_t i = 0; i < x.size(dim); ++i) out.push_back(select(x, dim, i));
  return out;
}

}  // namespace tg
