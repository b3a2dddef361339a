// Variable-length batches: with lengths, a padded batch gives, row for row, what each sequence gives alone (outputs,
// final states), zero outputs and zero input gradients at padded positions, and parameter gradients equal to the sum
// over the separate sequences; the padding's values (even NaN, on the fused path) change nothing.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;

namespace {

double max_abs(const Tensor& a) { return tg::max(tg::abs(a)).item<double>(); }

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a - b)).item<double>();
}

// Runs a module (batch_first) on x [B, T, I] with lengths, returning (y, h_n, c_n or undefined).
template <class M> std::vector<Tensor> run(M& m, const Tensor& x, const Tensor& lengths) {
  if constexpr (std::is_same_v<M, nn::LSTM>) {
    auto [y, s] = m.forward(x, std::nullopt, lengths);
    return {y, std::get<0>(s), std::get<1>(s)};
  } else {
    auto [y, h] = m.forward(x, Tensor(), lengths);
    return {y, h};
  }
}

template <class M> void check_masking(bool fused, double pad_value) {
  INFO(std::string(fused ? "fused" : "reference"), " pad=", pad_value);
  tg::manual_seed(30);
  const int64_t B = 4, T = 6, I = 3, H = 5;
  M m(nn::RNNOptions{.input_size = I, .hidden_size = H, .num_layers = 2, .batch_first = true, .bidirectional = true,
                     .fused = fused});
  m.to(tg::kFloat64);
  const std::vector<int64_t> len{6, 2, 5, 1};
  Tensor lengths = tg::tensor(len);
  Tensor x = tg::randn({B, T, I}, tg::kFloat64);
  {
    tg::NoGradGuard g;
    for (int64_t b = 0; b < B; ++b)
      if (len[b] < T) x.select(0, b).narrow(0, len[b], T - len[b]).fill_(pad_value);
  }
  x.requires_grad_();
  auto outs = run(m, x, lengths);
  Tensor w = tg::randn(outs[0].sizes(), tg::kFloat64);
  m.zero_grad();
  ((outs[0] * w).sum() + outs[1].sum() * 0.5).backward();
  std::vector<Tensor> g_batch;
  for (auto& p : m.parameters()) g_batch.push_back(p.grad().clone());
  Tensor gx = x.grad();
  CHECK(std::isfinite(max_abs(gx)));

  std::vector<Tensor> g_sum(g_batch.size());
  for (int64_t b = 0; b < B; ++b) {
    INFO("row ", b);
    Tensor xb = x.detach().narrow(0, b, 1).narrow(1, 0, len[b]).clone().requires_grad_();
    auto ob = run(m, xb, Tensor());
    CHECK(max_abs_diff(outs[0].narrow(0, b, 1).narrow(1, 0, len[b]), ob[0]) < 1e-13);
    if (len[b] < T) CHECK(max_abs(outs[0].narrow(0, b, 1).narrow(1, len[b], T - len[b])) == 0);
    for (size_t k = 1; k < outs.size(); ++k) CHECK(max_abs_diff(outs[k].narrow(1, b, 1), ob[k]) < 1e-13);
    m.zero_grad();
    ((ob[0] * w.narrow(0, b, 1).narrow(1, 0, len[b])).sum() + ob[1].sum() * 0.5).backward();
    auto ps = m.parameters();
    for (size_t i = 0; i < ps.size(); ++i)
      g_sum[i] = g_sum[i].defined() ? g_sum[i] + ps[i].grad() : ps[i].grad().clone();
    CHECK(max_abs_diff(gx.narrow(0, b, 1).narrow(1, 0, len[b]), xb.grad()) < 1e-13);
    if (len[b] < T) CHECK(max_abs(gx.narrow(0, b, 1).narrow(1, len[b], T - len[b])) == 0);
  }
  for (size_t i = 0; i < g_batch.size(); ++i) CHECK(max_abs_diff(g_batch[i], g_sum[i]) < 1e-12);
}

}  // namespace

TEST_SUITE("rnn") {

TEST_CASE("rnn masking: padded positions change neither outputs nor gradients") {
  for (bool fused : {true, false}) {
    check_masking<nn::LSTM>(fused, 1e6);
    check_masking<nn::GRU>(fused, -3.0);
    check_masking<nn::RNN>(fused, 7.0);
  }
  check_masking<nn::LSTM>(true, std::numeric_limits<double>::quiet_NaN());
}

TEST_CASE("rnn masking: zero lengths keep the initial state, full lengths equal no lengths") {
  tg::manual_seed(31);
  nn::GRU gru({.input_size = 2, .hidden_size = 3});
  Tensor x = tg::randn({4, 2, 2}), h0 = tg::randn({1, 2, 3});
  auto [y, h] = gru.forward(x, h0, tg::tensor(std::vector<int64_t>{0, 4}));
  CHECK(max_abs_diff(h.select(1, 0), h0.select(1, 0)) == 0);
  CHECK(max_abs(y.select(1, 0)) == 0);
  auto [y2, h2] = gru.forward(x, h0);
  auto [y3, h3] = gru.forward(x, h0, tg::tensor(std::vector<int64_t>{4, 4}));
  CHECK(max_abs_diff(y2, y3) == 0);
  CHECK(max_abs_diff(h2, h3) == 0);
  CHECK_THROWS_AS(gru.forward(x, h0, tg::tensor(std::vector<int64_t>{5, 1})), tg::Error);
}

}  // TEST_SUITE
