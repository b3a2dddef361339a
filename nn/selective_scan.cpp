// The selective scan op (nn/selective_scan.h): argument checks, the recorded node over the backend's fused kernels,
// and the composed reference.
#include "nn/selective_scan.h"

#include "autograd/functions/common.h"
#include "nn/detail.h"

namespace tg::nn::functional {

using autograd::Node;
using namespace tg::nn::detail;

namespace {

void check_scan_args(const char* op, const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                     const Tensor& C, const Tensor& D) {
  check_floating(op, "u", u);
  TG_CHECK(u.dim() == 3, "{}: u must be [batch, length, channels], got {}", op, shape_str(u.sizes()));
  TG_CHECK(A.defined() && A.dim() == 2, "{}: A must be [channels, d_state], got {}", op,
           A.defined() ? shape_str(A.sizes()) : "undefined");
  const int64_t Bt = u.size(0), L = u.size(1), E = u.size(2), N = A.size(1);
  TG_CHECK(delta.defined(), "{}: delta is undefined", op);
  check_param(op, "delta", delta, u, {Bt, L, E});
  check_param(op, "A", A, u, {E, N});
  TG_CHECK(B.defined() && C.defined(), "{}: B and C must be defined", op);
  check_param(op, "B", B, u, {Bt, L, N});
  check_param(op, "C", C, u, {Bt, L, N});
  check_param(op, "D", D, u, {E});
}

}  // namespace

Tensor selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      const Tensor& D) {
  const char* op = "selective_scan";
  check_scan_args(op, u, delta, A, B, C, D);
  Tensor uc = dense(u), dc = dense(delta), Ac = dense(A), Bc = dense(B), Cc = dense(C), Dc = dense(D);
  Tensor y = empty(u.sizes(), u.options());
  if (y.numel()) backend_for(u).selective_scan(uc, dc, Ac, Bc, Cc, Dc, y);
  const std::vector<Tensor> inputs{u, delta, A, B, C, D};
  if (autograd::needs_grad(inputs)) {
    std::vector<bool> wants;
    for (const Tensor& t : inputs) wants.push_back(t.defined() && t.requires_grad());
    std::vector<Tensor> saved{uc, dc, Ac, Bc, Cc};
    const bool has_d = Dc.defined();
    if (has_d) saved.push_back(Dc);
    autograd::record(op, y, inputs, std::move(saved), [=](const Tensor& g, const Node& n) {
      Tensor uv = n.saved_tensor(0), dv = n.saved_tensor(1), av = n.saved_tensor(2), bv = n.saved_tensor(3),
             cv = n.saved_tensor(4), Dv = has_d ? n.saved_tensor(5) : Tensor();
      const TensorOptions o = uv.options();
      std::vector<Tensor> gr(6);
      const Tensor* like[6] = {&uv, &dv, &av, &bv, &cv, &Dv};
      for (size_t i = 0; i < 6; ++i)
        if (wants[i]) gr[i] = zeros(like[i]->sizes(), o);
      if (uv.numel())
        backend_for(uv).selective_scan_backward(uv, dv, av, bv, cv, Dv, dense(g), gr[0], gr[1], gr[2], gr[3],
                                                gr[4], gr[5]);
      return gr;
    });
  }
  return y;
}

Tensor selective_scan_ref(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                          const Tensor& D) {
  check_scan_args("selective_scan_ref", u, delta, A, B, C, D);
  const int64_t Bt = u.size(0), L = u.size(1), E = u.size(2), N = A.size(1);
  Tensor h = zeros({Bt, E, N}, u.options().requires_grad(false));
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < L; ++t) {
    Tensor dt = delta.select(1, t).unsqueeze(2);                           // [Bt, E, 1]
    Tensor a = exp(dt * A);                                                // zero-order hold
    Tensor b = dt * u.select(1, t).unsqueeze(2) * B.select(1, t).unsqueeze(1);  // Euler
    h = a * h + b;
    ys.push_back(sum(h * C.select(1, t).unsqueeze(1), {2}));               // [Bt, E]
  }
  Tensor y = L ? stack(ys, 1) : zeros({Bt, 0, E}, u.options().requires_grad(false));
  return D.defined() ? y + u * D : y;
}

}  // namespace tg::nn::functional
