// Parity of RNN, LSTM, GRU and their cells with PyTorch (tests/make_fixtures.py, rnn_fixtures): the tapegrad module
// loads PyTorch's parameters with a strict load_state_dict (so names and shapes match torch.nn's), runs on the same
// input and initial state, and must give the same outputs, final states and gradients for the input, the state and
// every weight, with the fused kernels and with the composed reference. Packed cases use lengths.
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "parity.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
using namespace tg_test;

namespace {

// Builds the module for a case and runs it, returning (y, h_n[, c_n]).
using Runner = std::function<std::vector<Tensor>(const Inputs&, bool fused, std::shared_ptr<nn::Module>&)>;

Tensor get(const Inputs& in, const char* k) { return in.count(k) ? in.at(k) : Tensor(); }

template <class M> Runner net(nn::RNNOptions o) {
  return [o](const Inputs& in, bool fused, std::shared_ptr<nn::Module>& keep) {
    nn::RNNOptions opt = o;
    opt.fused = fused;
    auto m = std::make_shared<M>(opt);
    keep = m;
    m->to(tg::kFloat64);
    std::map<std::string, Tensor> state;
    for (auto& [k, v] : in)
      if (k != "input" && k != "h0" && k != "c0" && k != "lengths") state[k] = v;
    m->load_state_dict(state);
    Tensor x = in.at("input"), len = get(in, "lengths");
    if constexpr (std::is_same_v<M, nn::LSTM>) {
      std::optional<std::tuple<Tensor, Tensor>> hc;
      if (in.count("h0")) hc = std::tuple{in.at("h0"), in.at("c0")};
      auto [y, s] = m->forward(x, hc, len);
      return std::vector<Tensor>{y, std::get<0>(s), std::get<1>(s)};
    } else {
      auto [y, h] = m->forward(x, get(in, "h0"), len);
      return std::vector<Tensor>{y, h};
    }
  };
}

template <class M> Runner cell(std::function<std::shared_ptr<M>()> make) {
  return [make](const Inputs& in, bool fused, std::shared_ptr<nn::Module>& keep) {
    auto m = make();
    keep = m;
    m->fused = fused;
    m->to(tg::kFloat64);
    std::map<std::string, Tensor> state;
    for (auto& [k, v] : in)
      if (k != "input" && k != "h0" && k != "c0") state[k] = v;
    m->load_state_dict(state);
    if constexpr (std::is_same_v<M, nn::LSTMCell>) {
      auto [h, c] = m->forward(in.at("input"), std::tuple{in.at("h0"), in.at("c0")});
      return std::vector<Tensor>{h, c};
    } else {
      return std::vector<Tensor>{m->forward(in.at("input"), get(in, "h0"))};
    }
  };
}

std::map<std::string, Runner> table() {
  std::map<std::string, Runner> t;
  t["lstm"] = net<nn::LSTM>(
      {.input_size = 3, .hidden_size = 4, .num_layers = 2, .batch_first = true, .bidirectional = true});
  t["lstm_zero_state"] = net<nn::LSTM>({.input_size = 3, .hidden_size = 5});
  t["lstm_unbatched"] = net<nn::LSTM>({.input_size = 3, .hidden_size = 4, .num_layers = 2});
  t["gru"] = net<nn::GRU>({.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true});
  t["gru_nobias"] = net<nn::GRU>({.input_size = 3, .hidden_size = 4, .bias = false, .batch_first = true});
  t["rnn_tanh"] = net<nn::RNN>({.input_size = 3, .hidden_size = 4, .num_layers = 2});
  t["rnn_relu"] = net<nn::RNN>(
      {.input_size = 3, .hidden_size = 4, .batch_first = true, .bidirectional = true, .nonlinearity = "relu"});
  t["lstm_packed"] = net<nn::LSTM>(
      {.input_size = 3, .hidden_size = 4, .num_layers = 2, .batch_first = true, .bidirectional = true});
  t["gru_packed"] = net<nn::GRU>({.input_size = 3, .hidden_size = 4, .bidirectional = true});
  t["rnn_packed"] = net<nn::RNN>({.input_size = 3, .hidden_size = 4});
  t["lstm_cell"] = cell<nn::LSTMCell>([] { return std::make_shared<nn::LSTMCell>(3, 4); });
  t["gru_cell"] = cell<nn::GRUCell>([] { return std::make_shared<nn::GRUCell>(3, 4); });
  t["rnn_cell"] = cell<nn::RNNCell>([] { return std::make_shared<nn::RNNCell>(3, 4); });
  t["rnn_cell_relu_nobias"] = cell<nn::RNNCell>([] { return std::make_shared<nn::RNNCell>(3, 4, false, "relu"); });
  return t;
}

void run_all(bool fused) {
  auto cases = load_cases(kFixtures + "/rnn.safetensors");
  REQUIRE(!cases.empty());
  auto t = table();
  std::set<std::string> used;
  for (auto& [name, c] : cases) {
    auto it = t.find(name);
    CHECK_MESSAGE(it != t.end(), "no tapegrad module for fixture case rnn/", name);
    if (it == t.end()) continue;
    used.insert(name);
    INFO("rnn/", name, std::string(fused ? " (fused)" : " (reference)"));
    std::string summary;
    try {
      Inputs in = c.inputs;
      for (auto& [k, v] : in)
        if (v.is_floating_point() && (k == "input" || k == "h0" || k == "c0")) v = v.clone().requires_grad_();
      std::shared_ptr<nn::Module> m;
      std::vector<Tensor> outs = it->second(in, fused, m);
      std::vector<Tensor> flat;
      for (size_t i = 0; i < outs.size(); ++i) {
        compare("out" + std::to_string(i + 1), outs[i], c.outs.at(static_cast<int>(i + 1)), summary);
        flat.push_back(outs[i].reshape({-1}));
      }
      Tensor out = tg::cat(flat, 0);
      compare("out", out, c.outs.at(0), summary);
      (out * c.w).sum().backward();
      std::map<std::string, Tensor> grad_of;
      for (const char* k : {"input", "h0", "c0"})
        if (in.count(k)) grad_of[k] = in.at(k);
      for (auto& [k, p] : m->named_parameters()) grad_of[k] = p;
      for (auto& [g, want] : c.grads) {
        INFO("gradient of ", g);
        REQUIRE(grad_of.count(g));
        compare("grad." + g, grad_of.at(g).grad(), want, summary);
      }
    } catch (const std::exception& e) {
      FAIL_CHECK("rnn/", name, " threw: ", e.what());
      continue;
    }
    MESSAGE("rnn/", name, std::string(fused ? " fused:" : " reference:"), summary);
  }
  for (const auto& [key, fn] : t) CHECK_MESSAGE(used.count(key), "no fixture case for table entry ", key);
}

}  // namespace

TEST_SUITE("rnn") {

TEST_CASE("rnn parity: fused RNN/LSTM/GRU and cells against PyTorch") { run_all(true); }
TEST_CASE("rnn parity: composed reference against PyTorch") { run_all(false); }

}  // TEST_SUITE
