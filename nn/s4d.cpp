// S4D (nn/s4d.h): the FFT convolution op, the kernel from a Vandermonde product in real arithmetic (complex values
// as (re, im) pairs of tensors, differentiated by the tape), the convolution and recurrent forms, and the three
// initialisations of A.
#include "nn/s4d.h"

#include <cmath>
#include <numbers>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Eigenvalues>

#include "autograd/functions/common.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "nn/detail.h"
#include "nn/init.h"

namespace tg::nn {

namespace functional {

using autograd::Node;

namespace {
void check_conv_args(const char* op, const Tensor& u, const Tensor& k) {
  detail::check_floating(op, "u", u);
  TG_CHECK(u.dim() == 3, "{}: u must be [batch, channels, length], got {}", op, shape_str(u.sizes()));
  TG_CHECK(k.defined(), "{}: k is undefined", op);
  detail::check_param(op, "k", k, u, {u.size(1), u.size(2)});
}
}  // namespace

Tensor fft_conv(const Tensor& u, const Tensor& k) {
  check_conv_args("fft_conv", u, k);
  Tensor uc = detail::dense(u), kc = detail::dense(k);
  Tensor y = empty(u.sizes(), u.options());
  if (y.numel()) backend_for(u).fft_conv(uc, kc, y);
  if (autograd::needs_grad({u, k})) {
    const bool ru = u.requires_grad(), rk = k.requires_grad();
    autograd::record("fft_conv", y, {u, k}, {uc, kc}, [ru, rk](const Tensor& g, const Node& n) {
      Tensor uv = n.saved_tensor(0), kv = n.saved_tensor(1);
      Tensor gu = ru ? empty(uv.sizes(), uv.options()) : Tensor();
      Tensor gk = rk ? zeros(kv.sizes(), kv.options()) : Tensor();
      if (uv.numel()) backend_for(uv).fft_conv_backward(uv, kv, detail::dense(g), gu, gk);
      return std::vector<Tensor>{gu, gk};
    });
  }
  return y;
}

Tensor causal_conv_ref(const Tensor& u, const Tensor& k) {
  check_conv_args("causal_conv_ref", u, k);
  const int64_t B = u.size(0), H = u.size(1), L = u.size(2);
  Tensor y = zeros(u.sizes(), u.options().requires_grad(false));
  for (int64_t j = 0; j < L; ++j) {  // the lag-j term: k[:, j] * u shifted right by j
    Tensor shifted = cat({zeros({B, H, j}, u.options().requires_grad(false)), u.narrow(2, 0, L - j)}, 2);
    y = y + shifted * k.narrow(1, j, 1);
  }
  return y;
}

}  // namespace functional

namespace F = functional;

namespace {

struct Cx {  // a complex tensor as two real ones
  Tensor re, im;
};
Cx operator*(const Cx& a, const Cx& b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
Cx operator/(const Cx& a, const Cx& b) {
  Tensor d = b.re * b.re + b.im * b.im;
  return {(a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d};
}

// The Vandermonde matrix V[h, n, l] = z[h, n]^l for l < L, by doubling: [1] -> [1, z] -> [1, z, z^2, z^3] -> ...
// (log2 L complex products; z^l has |z| < 1 for a stable system, so the products stay bounded).
Cx vandermonde(const Cx& z, int64_t L) {
  Cx v{ones_like(z.re).unsqueeze(2), zeros_like(z.re).unsqueeze(2)};
  Cx p{z.re.unsqueeze(2), z.im.unsqueeze(2)};  // z^(current length)
  int64_t len = 1;
  while (len < L) {
    Cx next = v * p;
    v = {cat({v.re, next.re}, 2), cat({v.im, next.im}, 2)};
    len *= 2;
    if (len < L) p = p * p;
  }
  return {v.re.narrow(2, 0, L), v.im.narrow(2, 0, L)};
}

// The imaginary parts of the eigenvalues of HiPPO-LegS's normal part, -1/2 + M with M skew-symmetric,
// M[n, k] = sign(k - n) sqrt((2n + 1)(2k + 1)) / 2: M's eigenvalues are +-i w, with w^2 the (paired) eigenvalues
// of M^T M. Returns the n2 largest w, one per conjugate pair.
std::vector<double> legs_frequencies(int64_t N, int64_t n2) {
  Eigen::MatrixXd M = Eigen::MatrixXd::Zero(N, N);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < N; ++k)
      if (n != k) M(n, k) = (k > n ? 0.5 : -0.5) * std::sqrt(static_cast<double>((2 * n + 1) * (2 * k + 1)));
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(M.transpose() * M);
  std::vector<double> w;
  for (int64_t i = N - 1; i >= 0 && static_cast<int64_t>(w.size()) < n2; i -= 2)
    w.push_back(std::sqrt(std::max(0.0, es.eigenvalues()(i))));
  return w;
}

}  // namespace

S4D::S4D(const S4DOptions& o, TensorOptions opt) : options(o) {
  TG_CHECK(o.d_model > 0 && o.d_state >= 2 && o.d_state % 2 == 0,
           "S4D: d_model must be positive and d_state even and >= 2, got {} and {}", o.d_model, o.d_state);
  TG_CHECK(o.init == "lin" || o.init == "inv" || o.init == "legs",
           "S4D: init must be \"lin\", \"inv\" or \"legs\", got \"{}\"", o.init);
  TG_CHECK(o.discretization == "zoh" || o.discretization == "bilinear",
           "S4D: discretization must be \"zoh\" or \"bilinear\", got \"{}\"", o.discretization);
  TG_CHECK(o.dt_min > 0 && o.dt_max >= o.dt_min, "S4D: need 0 < dt_min <= dt_max, got {} and {}", o.dt_min,
           o.dt_max);
  const int64_t H = o.d_model, N = o.d_state, n2 = N / 2, dirs = o.bidirectional ? 2 : 1;
  TensorOptions p = opt.requires_grad(false);
  std::vector<double> im(n2);
  const double pi = std::numbers::pi;
  if (o.init == "legs") {
    im = legs_frequencies(N, n2);
  } else {
    for (int64_t n = 0; n < n2; ++n)
      im[n] = o.init == "lin" ? pi * n : N / pi * (static_cast<double>(N) / (2 * n + 1) - 1);
  }
  Tensor imt = tensor(im, {1, n2}).to(p.dtype_);
  {
    NoGradGuard g;
    log_dt = register_parameter(
        "log_dt", rand({H}, p) * (std::log(o.dt_max) - std::log(o.dt_min)) + std::log(o.dt_min));
    log_A_real = register_parameter("log_A_real", full({H, n2}, std::log(0.5), p));
    A_imag = register_parameter("A_imag", imt.expand({H, n2}).contiguous());
    C_re = register_parameter("C_re", randn({dirs, H, n2}, p) * std::sqrt(0.5));
    C_im = register_parameter("C_im", randn({dirs, H, n2}, p) * std::sqrt(0.5));
    D = register_parameter("D", randn({H}, p));
  }
  output_linear = register_module("output_linear", std::make_shared<Linear>(H, 2 * H, true, opt));
}

namespace {
// The discrete system at step dt: x_t = dA x_t-1 + dB u_t, with B = 1.
struct Discrete {
  Cx dA, dB;
};

Discrete discretize(const S4D& m, double dt_scale) {
  Tensor dt = (exp(m.log_dt) * dt_scale).unsqueeze(1);  // [H, 1]
  Cx A{-exp(m.log_A_real), m.A_imag};
  Cx dtA{A.re * dt, A.im * dt};
  if (m.options.discretization == "zoh") {  // dA = exp(dt A), dB = (dA - 1) / A
    Tensor e = exp(dtA.re);
    Cx dA{e * cos(dtA.im), e * sin(dtA.im)};
    return {dA, Cx{dA.re - 1.0, dA.im} / A};
  }
  // bilinear: dA = (1 + dt A / 2) / (1 - dt A / 2), dB = dt / (1 - dt A / 2)
  Cx den{rsub(dtA.re * 0.5, 1.0), dtA.im * -0.5};
  return {Cx{dtA.re * 0.5 + 1.0, dtA.im * 0.5} / den, Cx{dt.expand(dtA.re.sizes()), zeros_like(dtA.re)} / den};
}

Tensor reverse_time(const Tensor& x) {  // flips dim 2 of [B, H, L]
  const int64_t L = x.size(2);
  return index_select(x, 2, arange(static_cast<double>(L - 1), -1.0, -1.0));
}
}  // namespace

Tensor S4D::kernel(int64_t L, double dt_scale) const {
  TG_CHECK(L >= 0 && dt_scale > 0, "S4D.kernel: need L >= 0 and dt_scale > 0, got {} and {}", L, dt_scale);
  Discrete d = discretize(*this, dt_scale);
  Cx c = Cx{C_re, C_im} * Cx{d.dB.re.unsqueeze(0), d.dB.im.unsqueeze(0)};  // [dirs, H, N/2]
  if (L == 0) return zeros({c.re.size(0), c.re.size(1), 0}, c.re.options().requires_grad(false));
  Cx v = vandermonde(d.dA, L);  // [H, N/2, L]
  // K = 2 Re(sum_n c_n v_n): a batched [1, N/2] x [N/2, L] product per channel.
  Tensor k = matmul(c.re.unsqueeze(2), v.re) - matmul(c.im.unsqueeze(2), v.im);  // [dirs, H, 1, L]
  return k.squeeze(2) * 2.0;
}

Tensor S4D::ssm_output(const Tensor& u, const Tensor& y) const {
  Tensor h = output_linear->forward(gelu(y + u * D));
  auto ab = h.chunk(2, -1);
  return ab[0] * sigmoid(ab[1]);  // GLU
}

Tensor S4D::forward(const Tensor& x) {
  TG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == options.d_model, "S4D: input must be [B, L, {}], got {}",
           options.d_model, x.defined() ? shape_str(x.sizes()) : "undefined");
  const int64_t L = x.size(1);
  Tensor k = kernel(L);
  Tensor u = x.transpose(1, 2);  // [B, H, L]
  Tensor y = F::fft_conv(u, k.select(0, 0));
  if (options.bidirectional) y = y + reverse_time(F::fft_conv(reverse_time(u), k.select(0, 1)));
  return ssm_output(x, y.transpose(1, 2));
}

S4DState S4D::initial_state(int64_t batch) const {
  TensorOptions o = TensorOptions(log_dt.dtype()).device(log_dt.device());
  return {zeros({batch, options.d_model, options.d_state / 2}, o),
          zeros({batch, options.d_model, options.d_state / 2}, o)};
}

Tensor S4D::step(const Tensor& x_t, S4DState& s) {
  TG_CHECK(!options.bidirectional, "S4D.step: a bidirectional layer sees the future and has no recurrent form");
  TG_CHECK(x_t.defined() && x_t.dim() == 2 && x_t.size(1) == options.d_model, "S4D.step: input must be [B, {}], got {}",
           options.d_model, x_t.defined() ? shape_str(x_t.sizes()) : "undefined");
  TG_CHECK(s.re.defined() && s.re.sizes() == Shape({x_t.size(0), options.d_model, options.d_state / 2}),
           "S4D.step: the state must come from initial_state({})", x_t.size(0));
  Discrete d = discretize(*this, 1.0);
  Tensor u = x_t.unsqueeze(2);  // [B, H, 1]
  Cx x = Cx{s.re, s.im} * d.dA;
  x = {x.re + d.dB.re * u, x.im + d.dB.im * u};
  s = {x.re, x.im};
  Tensor y = sum(C_re.select(0, 0) * x.re - C_im.select(0, 0) * x.im, {2}) * 2.0;  // 2 Re(C x)
  return ssm_output(x_t, y);
}

Tensor S4D::forward_recurrent(const Tensor& x) {
  TG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == options.d_model, "S4D: input must be [B, L, {}], got {}",
           options.d_model, x.defined() ? shape_str(x.sizes()) : "undefined");
  S4DState s = initial_state(x.size(0));
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < x.size(1); ++t) ys.push_back(step(x.select(1, t), s));
  if (ys.empty()) return empty({x.size(0), 0, options.d_model}, x.options());
  return stack(ys, 1);
}

}  // namespace tg::nn
