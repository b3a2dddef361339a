// The fused recurrent layer op against its composed reference (a loop of cells built from tg ops on the tape):
// outputs, final states and every gradient, for each cell, both directions, with and without lengths, on the
// single-threaded and the threaded step loop, in float64 and float32; float64 gradcheck of the fused op and of the
// multi-layer modules; cells; inter-layer dropout; truncated BPTT with carried, detached state.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

namespace {

const char* cell_name(tg::RnnCell c) {
  switch (c) {
    case tg::RnnCell::Tanh: return "tanh";
    case tg::RnnCell::Relu: return "relu";
    case tg::RnnCell::LSTM: return "lstm";
    case tg::RnnCell::GRU: return "gru";
  }
  return "?";
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a.to(tg::kFloat64) - b.to(tg::kFloat64))).item<double>();
}

double max_abs(const Tensor& a) { return a.numel() ? tg::max(tg::abs(a.to(tg::kFloat64))).item<double>() : 0.0; }

// The inputs of one layer: x, h0, c0 (LSTM), w_ih, w_hh, b_ih, b_hh, as float leaves that require grad.
struct LayerInputs {
  std::vector<Tensor> t;  // x, h0, c0 (undefined unless LSTM), w_ih, w_hh, b_ih, b_hh
};

LayerInputs make_inputs(tg::RnnCell cell, int64_t T, int64_t B, int64_t I, int64_t H, tg::DType dt, bool bias = true) {
  const int64_t G = tg::rnn_gate_count(cell);
  auto r = [&](tg::Shape s, double scale) { return (tg::randn(s, dt) * scale).requires_grad_(); };
  const double k = 1.0 / std::sqrt(static_cast<double>(H));
  LayerInputs in;
  in.t = {r({T, B, I}, 1.0), r({B, H}, 0.5), cell == tg::RnnCell::LSTM ? r({B, H}, 0.5) : Tensor(),
          r({G * H, I}, k), r({G * H, H}, k), bias ? r({G * H}, k) : Tensor(), bias ? r({G * H}, k) : Tensor()};
  return in;
}

F::RnnLayerOut run(tg::RnnCell cell, const std::vector<Tensor>& v, bool reverse, const Tensor& lengths, bool fused) {
  return F::rnn_layer(cell, v[0], v[1], v[2], v[3], v[4], v[5], v[6], reverse, lengths, fused);
}

// y, h (and c) flattened into one vector, so that one weighting covers every output.
Tensor flat(const F::RnnLayerOut& o) {
  std::vector<Tensor> parts{o.y.reshape({-1}), o.h.reshape({-1})};
  if (o.c.defined()) parts.push_back(o.c.reshape({-1}));
  return tg::cat(parts, 0);
}

// Runs fused and reference on the same inputs and compares outputs and all gradients.
void check_fused_matches_reference(tg::RnnCell cell, int64_t T, int64_t B, int64_t I, int64_t H, tg::DType dt,
                                   bool reverse, bool with_lengths, double tol, bool bias = true) {
  INFO(cell_name(cell), " T=", T, " B=", B, " I=", I, " H=", H, " ", tg::dtype_name(dt), " reverse=", reverse,
       " lengths=", with_lengths, " bias=", bias);
  LayerInputs in = make_inputs(cell, T, B, I, H, dt, bias);
  Tensor lengths;
  if (with_lengths) {
    std::vector<int64_t> l(B);
    for (int64_t b = 0; b < B; ++b) l[b] = (b * 7 + 3) % (T + 1);  // includes 0 and T for the sizes used
    l[0] = T;
    lengths = tg::tensor(l);
  }
  F::RnnLayerOut fo = run(cell, in.t, reverse, lengths, true);
  Tensor w = tg::randn(flat(fo).sizes(), dt);
  std::vector<Tensor> gf, gr;
  Tensor of = flat(fo);
  (of * w).sum().backward();
  for (auto& t : in.t) {
    gf.push_back(t.defined() ? t.grad() : Tensor());
    if (t.defined()) t.zero_grad();
  }
  F::RnnLayerOut ro = run(cell, in.t, reverse, lengths, false);
  Tensor orf = flat(ro);
  (orf * w).sum().backward();
  for (auto& t : in.t) gr.push_back(t.defined() ? t.grad() : Tensor());
  const double scale = std::max(1.0, max_abs(orf));
  CHECK_MESSAGE(max_abs_diff(of, orf) <= tol * scale, "outputs differ by ", max_abs_diff(of, orf));
  const char* names[] = {"x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"};
  for (size_t i = 0; i < gf.size(); ++i) {
    if (!in.t[i].defined()) continue;
    INFO("gradient of ", names[i]);
    REQUIRE(gf[i].defined());
    REQUIRE(gr[i].defined());
    const double d = max_abs_diff(gf[i], gr[i]);
    CHECK_MESSAGE(d <= tol * std::max(1.0, max_abs(gr[i])), "max |diff| = ", d);
  }
}

const tg::RnnCell kCells[] = {tg::RnnCell::Tanh, tg::RnnCell::Relu, tg::RnnCell::LSTM, tg::RnnCell::GRU};

struct ThreadCount {
  int saved = tg::get_num_threads();
  explicit ThreadCount(int n) { tg::set_num_threads(n); }
  ~ThreadCount() { tg::set_num_threads(saved); }
};

}  // namespace

TEST_SUITE("rnn") {

TEST_CASE("rnn fused: equals the composed reference, every cell, direction and masking (float64)") {
  tg::manual_seed(1);
  for (tg::RnnCell cell : kCells)
    for (bool reverse : {false, true})
      for (bool lengths : {false, true})
        check_fused_matches_reference(cell, 5, 3, 4, 3, tg::kFloat64, reverse, lengths, 1e-12);
  for (tg::RnnCell cell : kCells)
    check_fused_matches_reference(cell, 4, 2, 3, 5, tg::kFloat64, false, false, 1e-12, /*bias=*/false);
  check_fused_matches_reference(tg::RnnCell::LSTM, 1, 1, 1, 1, tg::kFloat64, false, false, 1e-12);
  // T * B > 256: the weight-gradient products run K in several blocks.
  check_fused_matches_reference(tg::RnnCell::LSTM, 70, 9, 5, 19, tg::kFloat64, true, true, 1e-12);
  check_fused_matches_reference(tg::RnnCell::GRU, 70, 9, 5, 19, tg::kFloat64, false, false, 1e-12);
}

TEST_CASE("rnn fused: the threaded step loop equals the reference (float64 and float32)") {
  ThreadCount threads(2);
  tg::manual_seed(2);
  // Sizes above the step threading threshold (B * G * H * H >= 2^20), with H not a multiple of the 16-unit blocks.
  check_fused_matches_reference(tg::RnnCell::LSTM, 3, 12, 20, 150, tg::kFloat64, false, true, 1e-11);
  check_fused_matches_reference(tg::RnnCell::GRU, 3, 12, 20, 180, tg::kFloat64, true, false, 1e-11);
  check_fused_matches_reference(tg::RnnCell::Tanh, 3, 12, 20, 300, tg::kFloat64, false, false, 1e-11);
  check_fused_matches_reference(tg::RnnCell::LSTM, 3, 12, 20, 160, tg::kFloat32, true, true, 2e-5);
  check_fused_matches_reference(tg::RnnCell::GRU, 3, 12, 20, 180, tg::kFloat32, false, true, 2e-5);
}

TEST_CASE("rnn fused: gradcheck of the layer op (float64)") {
  tg::manual_seed(3);
  for (tg::RnnCell cell : kCells)
    for (bool reverse : {false, true})
      for (bool masked : {false, true}) {
        INFO(cell_name(cell), " reverse=", reverse, " masked=", masked);
        LayerInputs in = make_inputs(cell, 3, 2, 3, 2, tg::kFloat64);
        std::vector<Tensor> leaves;
        for (auto& t : in.t)
          if (t.defined()) leaves.push_back(t);
        Tensor lengths = masked ? tg::tensor(std::vector<int64_t>{3, 1}) : Tensor();
        const bool lstm = cell == tg::RnnCell::LSTM;
        auto fn = [&](const std::vector<Tensor>& v) {
          std::vector<Tensor> a = lstm ? v : std::vector<Tensor>{v[0], v[1], Tensor(), v[2], v[3], v[4], v[5]};
          return flat(run(cell, a, reverse, lengths, true));
        };
        std::string report;
        CHECK_MESSAGE(tg::gradcheck(fn, leaves, {}, &report), report);
      }
}

TEST_CASE("rnn fused: one node per layer and direction on the tape") {
  tg::manual_seed(4);
  nn::LSTM lstm({.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true});
  Tensor x = tg::randn({6, 2, 3});
  const size_t before = tg::autograd::tape_size();
  auto [y, st] = lstm.forward(x);
  // Per layer and direction: the fused node and its three views (y, h_n, c_n); then joins of the directions and of
  // the final states. No per-step or per-gate nodes.
  std::string tape = tg::autograd::tape_string();
  size_t fused = 0;
  for (size_t p = tape.find(" lstm("); p != std::string::npos; p = tape.find(" lstm(", p + 1)) ++fused;
  CHECK(fused == 4);
  for (const char* op : {"sigmoid", "tanh", "mul", "add", "mm"})
    CHECK(tape.find(std::string(" ") + op + "(") == std::string::npos);
  CHECK(tg::autograd::tape_size() - before <= 30);
}

TEST_CASE("rnn modules: multi-layer bidirectional batch_first fused equals reference, and gradcheck") {
  tg::manual_seed(5);
  for (bool bf : {false, true}) {
    nn::RNNOptions o{.input_size = 3, .hidden_size = 4, .num_layers = 2, .batch_first = bf, .bidirectional = true};
    auto a = std::make_shared<nn::GRU>(o);
    o.fused = false;
    auto b = std::make_shared<nn::GRU>(o);
    a->to(tg::kFloat64);
    b->to(tg::kFloat64);
    auto sd_list = a->state_dict();
    std::map<std::string, Tensor> sd(sd_list.begin(), sd_list.end());
    b->load_state_dict(sd);
    Tensor x = tg::randn({bf ? 2 : 5, bf ? 5 : 2, 3}, tg::kFloat64).requires_grad_();
    Tensor h0 = tg::randn({4, 2, 4}, tg::kFloat64);
    auto [ya, ha] = a->forward(x, h0);
    auto [yb, hb] = b->forward(x, h0);
    CHECK(ya.sizes() == tg::Shape{bf ? 2 : 5, bf ? 5 : 2, 8});
    CHECK(ha.sizes() == tg::Shape{4, 2, 4});
    CHECK(max_abs_diff(ya, yb) < 1e-13);
    CHECK(max_abs_diff(ha, hb) < 1e-13);
  }
  // gradcheck through a 2-layer bidirectional LSTM (every parameter, the input and the initial state)
  auto m = std::make_shared<nn::LSTM>(
      nn::RNNOptions{.input_size = 2, .hidden_size = 2, .num_layers = 2, .batch_first = true, .bidirectional = true});
  m->to(tg::kFloat64);
  std::vector<Tensor> leaves = m->parameters();
  const size_t np = leaves.size();
  leaves.push_back(tg::randn({2, 3, 2}, tg::kFloat64).requires_grad_());
  leaves.push_back(tg::randn({4, 2, 2}, tg::kFloat64).requires_grad_());
  leaves.push_back(tg::randn({4, 2, 2}, tg::kFloat64).requires_grad_());
  auto fn = [&](const std::vector<Tensor>& v) {
    auto [y, s] = m->forward(v[np], std::tuple{v[np + 1], v[np + 2]});
    return tg::cat({y.reshape({-1}), std::get<0>(s).reshape({-1}), std::get<1>(s).reshape({-1})}, 0);
  };
  std::string report;
  CHECK_MESSAGE(tg::gradcheck(fn, leaves, {}, &report), report);
}

TEST_CASE("rnn modules: parameter names, shapes and init bounds are PyTorch's") {
  tg::manual_seed(6);
  nn::LSTM lstm({.input_size = 5, .hidden_size = 16, .num_layers = 2, .bidirectional = true});
  std::vector<std::string> names;
  for (auto& [n, p] : lstm.named_parameters()) names.push_back(n);
  std::vector<std::string> want;
  for (std::string l : {"0", "1"})
    for (std::string d : {"", "_reverse"})
      for (std::string k : {"weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"}) want.push_back(k + l + d);
  CHECK(names == want);
  auto params = lstm.named_parameters();
  CHECK(params[0].second.sizes() == tg::Shape{64, 5});
  CHECK(params[4].second.sizes() == tg::Shape{64, 5});   // reverse direction, layer 0
  CHECK(params[8].second.sizes() == tg::Shape{64, 32});  // layer 1 reads both directions
  CHECK(params[9].second.sizes() == tg::Shape{64, 16});
  for (auto& [n, p] : params) {
    CHECK(max_abs(p) <= 0.25);  // 1 / sqrt(16)
    CHECK(max_abs(p) > 0.2);
  }
  nn::GRUCell gc(3, 7);
  CHECK(gc.weight_ih.sizes() == tg::Shape{21, 3});
  CHECK(gc.bias_hh.sizes() == tg::Shape{21});
}

TEST_CASE("rnn cells: fused and reference steps agree, batched and unbatched") {
  tg::manual_seed(7);
  nn::LSTMCell a(3, 4), b(3, 4);
  b.fused = false;
  a.to(tg::kFloat64);
  b.to(tg::kFloat64);
  auto sd_list = a.state_dict();
    std::map<std::string, Tensor> sd(sd_list.begin(), sd_list.end());
  b.load_state_dict(sd);
  Tensor x = tg::randn({2, 3}, tg::kFloat64), h = tg::randn({2, 4}, tg::kFloat64), c = tg::randn({2, 4}, tg::kFloat64);
  auto [ha, ca] = a.forward(x, std::tuple{h, c});
  auto [hb, cb] = b.forward(x, std::tuple{h, c});
  CHECK(max_abs_diff(ha, hb) < 1e-14);
  CHECK(max_abs_diff(ca, cb) < 1e-14);
  auto [hu, cu] = a.forward(x.select(0, 1), std::tuple{h.select(0, 1), c.select(0, 1)});
  CHECK(hu.sizes() == tg::Shape{4});
  CHECK(max_abs_diff(hu, ha.select(0, 1)) < 1e-14);
  nn::GRUCell g(3, 4);
  CHECK(g.forward(tg::randn({5, 3})).sizes() == tg::Shape{5, 4});  // zero initial state
  nn::RNNCell r(3, 4, true, "relu");
  CHECK(tg::min(r.forward(tg::randn({5, 3}))).item<double>() >= 0.0);
}

TEST_CASE("rnn modules: inter-layer dropout in training only, never after the last layer") {
  tg::manual_seed(8);
  nn::RNNOptions o{.input_size = 3, .hidden_size = 8, .num_layers = 2, .dropout = 0.5};
  nn::LSTM drop(o);
  o.dropout = 0;
  nn::LSTM plain(o);
  auto sd_list = drop.state_dict();
    std::map<std::string, Tensor> sd(sd_list.begin(), sd_list.end());
  plain.load_state_dict(sd);
  Tensor x = tg::randn({4, 2, 3});
  auto y1 = std::get<0>(drop.forward(x)), y2 = std::get<0>(drop.forward(x));
  CHECK(max_abs_diff(y1, y2) > 1e-4);  // different masks
  drop.eval();
  CHECK(max_abs_diff(std::get<0>(drop.forward(x)), std::get<0>(plain.forward(x))) == 0.0);
  // One layer: nothing to drop between layers, so training mode changes nothing.
  nn::GRU one({.input_size = 3, .hidden_size = 8, .dropout = 0.5});
  CHECK(max_abs_diff(std::get<0>(one.forward(x)), std::get<0>(one.forward(x))) == 0.0);
}

TEST_CASE("rnn errors: shapes, dtypes and lengths are checked at the op boundary, naming the op") {
  nn::LSTM lstm({.input_size = 3, .hidden_size = 4, .num_layers = 2});
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const tg::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message([&] { lstm.forward(tg::randn({5, 2, 4})); }).find("features") != std::string::npos);
  CHECK(message([&] { lstm.forward(tg::randn({5, 2, 3}), std::tuple{tg::zeros({1, 2, 4}), tg::zeros({1, 2, 4})}); })
            .find("h0 must be [2, 2, 4]") != std::string::npos);
  CHECK(message([&] { lstm.forward(tg::randn({5, 2, 3}), std::nullopt, tg::tensor(std::vector<int64_t>{6, 1})); })
            .find("lengths must lie in [0, 5]") != std::string::npos);
  CHECK(message([&] { lstm.forward(tg::randn({5, 2, 3}).to(tg::kFloat64)); }).find("lstm") != std::string::npos);
  CHECK_THROWS_AS(nn::RNN(nn::RNNOptions{.input_size = 3, .hidden_size = 4, .nonlinearity = "sigmoid"}), tg::Error);
}

TEST_CASE("rnn truncated BPTT: carried detached state continues the sequence, gradients stop at the cut") {
  tg::manual_seed(9);
  nn::LSTM lstm({.input_size = 3, .hidden_size = 5, .num_layers = 2, .batch_first = true});
  lstm.to(tg::kFloat64);
  Tensor x = tg::randn({2, 8, 3}, tg::kFloat64);
  auto [y_full, s_full] = lstm.forward(x);
  // Two chunks of 4 steps, the state carried and detached in between.
  auto [y1, s1] = lstm.forward(x.narrow(1, 0, 4));
  auto carried = std::tuple{std::get<0>(s1).detach(), std::get<1>(s1).detach()};
  auto [y2, s2] = lstm.forward(x.narrow(1, 4, 4), carried);
  CHECK(max_abs_diff(y2, y_full.narrow(1, 4, 4)) < 1e-14);
  CHECK(max_abs_diff(std::get<0>(s2), std::get<0>(s_full)) < 1e-14);
  CHECK(max_abs_diff(std::get<1>(s2), std::get<1>(s_full)) < 1e-14);
  // The chunk-2 gradient equals that of a fresh run from a constant state with the same values.
  lstm.zero_grad();
  y2.sum().backward();
  std::vector<Tensor> g_chunk;
  for (auto& p : lstm.parameters()) g_chunk.push_back(p.grad().clone());
  lstm.zero_grad();
  auto fresh = std::tuple{std::get<0>(s1).detach().clone(), std::get<1>(s1).detach().clone()};
  std::get<0>(lstm.forward(x.narrow(1, 4, 4), fresh)).sum().backward();
  auto ps = lstm.parameters();
  for (size_t i = 0; i < ps.size(); ++i) CHECK(max_abs_diff(ps[i].grad(), g_chunk[i]) < 1e-14);
  // Chunk 1's graph was not reached (nor freed) by chunk 2's backward: it still backpropagates once.
  CHECK_NOTHROW(y1.sum().backward());
  // Without the detach, the gradient of chunk 2 would reach chunk 1 and differ.
  lstm.zero_grad();
  auto [y1b, s1b] = lstm.forward(x.narrow(1, 0, 4));
  std::get<0>(lstm.forward(x.narrow(1, 4, 4), s1b)).sum().backward();
  CHECK(max_abs_diff(lstm.parameters()[0].grad(), g_chunk[0]) > 1e-6);
}

}  // TEST_SUITE
