// Indexing and joining: index_select, gather, scatter_add, index_add, embedding, one_hot, cat, stack, tril/triu,
// each with its backward (a gather's backward is the matching scatter, and the other way round).
#include "autograd/functions/common.h"

namespace tg {

using autograd::Node;

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index_in) {
  detail::check_defined("index_select", x);
  TG_CHECK(index_in.defined() && index_in.dim() <= 1, "index_select: index must be 0-d or 1-d, got shape {}",
           index_in.defined() ? shape_str(index_in.sizes()) : "undefined");
  detail::check_same_device("index_select", x, index_in);
  TG_CHECK(x.dim() > 0, "index_select: cannot index a 0-dim tensor");
  int64_t d = wrap_dim(dim, x.dim(), "index_select");
  Tensor index = detail::checked_index("index_select", index_in.reshape({-1}), x.size(d), true);
  Shape s = x.sizes();
  s[d] = index.numel();
  Tensor out = empty(s, x.options());
  backend_for(x).index_select(x, d, index, out);
  if (autograd::needs_grad({x}))
    autograd::record("index_select", out, {x}, {index}, [in = x.sizes(), d](const Tensor& g, const Node& n) {
      Tensor gx = zeros(in, g.options());
      backend_for(gx).index_add(gx, d, n.saved_tensor(0), g);
      return std::vector<Tensor>{gx};
    });
  return out;
}

namespace {
// gather/scatter shape rule: index has x's ndim and is no larger than x outside dim (and than src everywhere).
void check_gather_shapes(const char* op, const Tensor& x, int64_t d, const Tensor& index, const Tensor* src) {
  TG_CHECK(index.dim() == x.dim(), "{}: index (shape {}) must have as many dims as the input (shape {})", op,
           shape_str(index.sizes()), shape_str(x.sizes()));
  for (int64_t i = 0; i < x.dim(); ++i) {
    TG_CHECK(i == d || index.size(i) <= x.size(i), "{}: index shape {} is larger than input shape {} at dim {}", op,
             shape_str(index.sizes()), shape_str(x.sizes()), i);
    TG_CHECK(!src || index.size(i) <= src->size(i), "{}: index shape {} is larger than src shape {} at dim {}", op,
             shape_str(index.sizes()), shape_str(src->sizes()), i);
  }
}

// The part of src that index covers.
Tensor cut_to(const Tensor& src, const Tensor& index) {
  Tensor s = src;
  for (int64_t i = 0; i < src.dim(); ++i)
    if (s.size(i) != index.size(i)) s = detail::raw_view(s, [&] { Shape z = s.sizes(); z[i] = index.size(i); return z; }(),
                                                       s.strides(), s.storage_offset());
  return s;
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index_in) {
  detail::check_defined("gather", x);
  detail::check_defined("gather", index_in);
  detail::check_same_device("gather", x, index_in);
  int64_t d = wrap_dim(dim, x.dim(), "gather");
  check_gather_shapes("gather", x, d, index_in, nullptr);
  Tensor index = detail::checked_index("gather", index_in, x.dim() == 0 ? 1 : x.size(d), false);
  Tensor out = empty(index.sizes(), x.options());
  if (x.dim() == 0) return x.clone();
  backend_for(x).gather(x, d, index, out);
  if (autograd::needs_grad({x}))
    autograd::record("gather", out, {x}, {index}, [in = x.sizes(), d](const Tensor& g, const Node& n) {
      Tensor gx = zeros(in, g.options());
      backend_for(gx).scatter_add(gx, d, n.saved_tensor(0), g);
      return std::vector<Tensor>{gx};
    });
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index_in, const Tensor& src) {
  detail::check_defined("scatter_add", x);
  detail::check_defined("scatter_add", index_in);
  detail::check_defined("scatter_add", src);
  detail::check_same_device("scatter_add", x, index_in);
  detail::check_same_device("scatter_add", x, src);
  TG_CHECK(x.dtype() == src.dtype(), "scatter_add: self has dtype {} but src has {}", dtype_name(x.dtype()),
           dtype_name(src.dtype()));
  TG_CHECK(src.dim() == x.dim(), "scatter_add: src (shape {}) must have as many dims as self (shape {})",
           shape_str(src.sizes()), shape_str(x.sizes()));
  int64_t d = wrap_dim(dim, x.dim(), "scatter_add");
  check_gather_shapes("scatter_add", x, d, index_in, &src);
  Tensor index = detail::checked_index("scatter_add", index_in, x.dim() == 0 ? 1 : x.size(d), false);
  Tensor out = x.detach().clone();
  backend_for(x).scatter_add(out, d, index, cut_to(src, index));
  if (autograd::needs_grad({x, src})) {
    bool rs = src.requires_grad();
    autograd::record("scatter_add", out, {x, index, src}, {index},
                     [d, rs, ss = src.sizes()](const Tensor& g, const Node& n) {
                       Tensor gs;
                       if (rs) {
                         Tensor idx = n.saved_tensor(0);
                         Tensor part = gather(g, d, idx);
                         gs = part.sizes() == ss ? part : zeros(ss, g.options());
                         if (!gs.is_same(part)) cut_to(gs, idx).copy_(part);
                       }
                       return std::vector<Tensor>{g, Tensor(), gs};
                     });
  }
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index_in, const Tensor& src) {
  detail::check_defined("index_add", x);
  detail::check_defined("index_add", src);
  TG_CHECK(index_in.defined() && index_in.dim() <= 1, "index_add: index must be 0-d or 1-d");
  TG_CHECK(x.dtype() == src.dtype(), "index_add: self has dtype {} but source has {}", dtype_name(x.dtype()),
           dtype_name(src.dtype()));
  int64_t d = wrap_dim(dim, x.dim(), "index_add");
  Tensor index = detail::checked_index("index_add", index_in.reshape({-1}), x.size(d), true);
  Shape expect = x.sizes();
  expect[d] = index.numel();
  TG_CHECK(src.sizes() == expect, "index_add: source has shape {} but expected {}", shape_str(src.sizes()),
           shape_str(expect));
  Tensor out = x.detach().clone();
  backend_for(x).index_add(out, d, index, src);
  if (autograd::needs_grad({x, src})) {
    bool rs = src.requires_grad();
    autograd::record("index_add", out, {x, index, src}, {index}, [d, rs](const Tensor& g, const Node& n) {
      return std::vector<Tensor>{g, Tensor(), rs ? index_select(g, d, n.saved_tensor(0)) : Tensor()};
    });
  }
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  detail::check_defined("embedding", weight);
  detail::check_defined("embedding", indices);
  TG_CHECK(weight.dim() == 2, "embedding: weight must be 2-d [num_embeddings, dim], got shape {}",
           shape_str(weight.sizes()));
  TG_CHECK(indices.dtype() == kInt64, "embedding: indices must be int64, got {}", dtype_name(indices.dtype()));
  Shape s = indices.sizes();
  s.push_back(weight.size(1));
  detail::checked_index("embedding", indices, weight.size(0), false);
  return index_select(weight, 0, indices.reshape({-1})).reshape(s);
}

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  detail::check_defined("one_hot", indices);
  TG_CHECK(indices.dtype() == kInt64, "one_hot: indices must be int64, got {}", dtype_name(indices.dtype()));
  if (num_classes < 0) {
    TG_CHECK(indices.numel() > 0, "one_hot: cannot infer the number of classes from an empty tensor");
    num_classes = amax(indices, {}, false).item<int64_t>() + 1;
  }
  detail::checked_index("one_hot", indices, num_classes, false);
  return eq(indices.unsqueeze(-1), arange(static_cast<double>(num_classes), indices.options())).to(kInt64);
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  TG_CHECK(!xs.empty(), "cat: expected a non-empty list of tensors");
  for (const Tensor& t : xs) detail::check_defined("cat", t);
  const Tensor& first = xs[0];
  TG_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated");
  int64_t d = wrap_dim(dim, first.dim(), "cat");
  Shape s = first.sizes();
  s[d] = 0;
  DType t = first.dtype();
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    detail::check_same_device("cat", first, x);
    TG_CHECK(x.dim() == first.dim(), "cat: tensor {} has {} dims but tensor 0 has {}", i, x.dim(), first.dim());
    for (int64_t k = 0; k < x.dim(); ++k)
      TG_CHECK(k == d || x.size(k) == first.size(k),
               "cat: sizes must match except in dim {}: tensor 0 has shape {}, tensor {} has shape {}", d,
               shape_str(first.sizes()), i, shape_str(x.sizes()));
    s[d] += x.size(d);
    t = promote_types(t, x.dtype());
  }
  Tensor out = empty(s, first.options().dtype(t));
  std::vector<int64_t> offsets;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    Shape part = out.sizes();
    part[d] = x.size(d);
    if (x.numel() > 0)
      backend_for(out).copy(x, detail::raw_view(out, part, out.strides(), off * out.stride(d)));
    offsets.push_back(off);
    off += x.size(d);
  }
  if (autograd::needs_grad(xs)) {
    std::vector<int64_t> lens;
    for (const Tensor& x : xs) lens.push_back(x.size(d));
    autograd::record("cat", out, xs, {}, [d, offsets, lens](const Tensor& g, const Node&) {
      std::vector<Tensor> gs;
      for (size_t i = 0; i < lens.size(); ++i) gs.push_back(g.narrow(d, offsets[i], lens[i]));
      return gs;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  TG_CHECK(!xs.empty(), "stack: expected a non-empty list of tensors");
  for (size_t i = 0; i < xs.size(); ++i) {
    detail::check_defined("stack", xs[i]);
    TG_CHECK(xs[i].sizes() == xs[0].sizes(), "stack: tensor {} has shape {} but tensor 0 has shape {}", i,
             shape_str(xs[i].sizes()), shape_str(xs[0].sizes()));
  }
  int64_t d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> us;
  for (const Tensor& x : xs) us.push_back(x.unsqueeze(d));
  return cat(us, d);
}

namespace {
Tensor triangle(const char* name, const Tensor& x, int64_t k, bool upper) {
  detail::check_defined(name, x);
  TG_CHECK(x.dim() >= 2, "{}: expects a tensor with at least 2 dims, got shape {}", name, shape_str(x.sizes()));
  Tensor in = x.detach().contiguous();
  Tensor out = empty(x.sizes(), x.options());
  backend_for(x).triangle(in, k, upper, out);
  if (autograd::needs_grad({x}))
    autograd::record(name, out, {x}, {}, [name, k, upper](const Tensor& g, const Node&) {
      return std::vector<Tensor>{triangle(name, g, k, upper)};
    });
  return out;
}
}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) { return triangle("tril", x, diagonal, false); }
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle("triu", x, diagonal, true); }

}  // namespace tg
