// matmul with torch.matmul semantics (1-d promotion, broadcast batch dims), mm and bmm, and their backward:
// grad_a = grad @ b^T, grad_b = a^T @ grad. Everything funnels into one recorded 3-d batched product; the views
// that shape the operands (expand, reshape) carry the broadcast reductions in their own backward.
#include "autograd/functions/common.h"

namespace tg {

using autograd::Node;

namespace {

// GEMM libraries need a non-zero stride in each matrix dim (Eigen reads a runtime stride of 0 as "default"):
// a broadcast operand, such as the gradient of a sum, is copied first. The batch dim may keep stride 0.
Tensor gemm_operand(const Tensor& t) {
  for (int64_t d = 1; d < 3; ++d)
    if (t.size(d) > 1 && t.stride(d) == 0) {
      Tensor c = empty(t.sizes(), t.options());
      backend_for(t).copy(t, c);
      return c;
    }
  return t;
}

// [B, M, K] @ [B, K, N] -> [B, M, N], recorded.
Tensor bmm_raw(const Tensor& a, const Tensor& b) {
  Tensor out = empty({a.size(0), a.size(1), b.size(2)}, a.options());
  backend_for(a).matmul(gemm_operand(a), gemm_operand(b), out);
  if (autograd::needs_grad({a, b})) {
    bool ra = a.requires_grad(), rb = b.requires_grad();
    autograd::record("matmul", out, {a, b}, {a, b}, [ra, rb](const Tensor& g, const Node& n) {
      Tensor x = n.saved_tensor(0), y = n.saved_tensor(1);
      return std::vector<Tensor>{ra ? bmm_raw(g, y.transpose(1, 2)) : Tensor(),
                                 rb ? bmm_raw(x.transpose(1, 2), g) : Tensor()};
    });
  }
  return out;
}

void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  detail::check_defined(op, a);
  detail::check_defined(op, b);
  detail::check_same_device(op, a, b);
  TG_CHECK(a.dtype() == b.dtype(), "{}: dtypes {} and {} differ", op, dtype_name(a.dtype()), dtype_name(b.dtype()));
  TG_CHECK(a.dtype() != kBool, "{}: bool tensors are not supported", op);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_operands("matmul", a, b);
  TG_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dim, got shapes {} and {}",
           shape_str(a.sizes()), shape_str(b.sizes()));
  const int64_t K = a.size(-1);
  const int64_t Kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  TG_CHECK(K == Kb, "matmul: shapes {} and {} cannot be multiplied ({} != {})", shape_str(a.sizes()),
           shape_str(b.sizes()), K, Kb);
  if (a.dim() == 1 && b.dim() == 1) return matmul(a.unsqueeze(0), b.unsqueeze(1)).reshape({});
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);

  const int64_t M = a.size(-2), N = b.size(-1);
  if (b.dim() == 2) {  // [..., M, K] @ [K, N]: one large GEMM over all rows of a
    Shape out_shape(a.sizes().begin(), a.sizes().end() - 1);
    const int64_t rows = shape_numel(out_shape);  // explicit: a -1 cannot be inferred when K == 0
    out_shape.push_back(N);
    Tensor a2 = a.reshape({1, rows, K});
    return bmm_raw(a2, b.unsqueeze(0)).reshape(out_shape);
  }
  Shape ba(a.sizes().begin(), a.sizes().end() - 2), bb(b.sizes().begin(), b.sizes().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(ba, bb, "matmul");
  } catch (const Error&) {
    TG_ERROR("matmul: the batch dims of shapes {} and {} cannot be broadcast together", shape_str(a.sizes()),
             shape_str(b.sizes()));
  }
  int64_t B = shape_numel(batch);
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {M, K});
  eb.insert(eb.end(), {K, N});
  Tensor a3 = a.expand(ea).reshape({B, M, K});
  Tensor b3 = b.expand(eb).reshape({B, K, N});
  Shape out_shape = batch;
  out_shape.insert(out_shape.end(), {M, N});
  return bmm_raw(a3, b3).reshape(out_shape);
}

Tensor mm(const Tensor& a, const Tensor& b) {
  check_operands("mm", a, b);
  TG_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0), "mm: shapes {} and {} cannot be multiplied",
           shape_str(a.sizes()), shape_str(b.sizes()));
  return matmul(a, b);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_operands("bmm", a, b);
  TG_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1),
           "bmm: shapes {} and {} cannot be multiplied", shape_str(a.sizes()), shape_str(b.sizes()));
  return bmm_raw(a, b);
}

}  // namespace tg
