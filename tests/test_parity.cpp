// Parity with PyTorch: tests/make_fixtures.py stores, for each case NAME, the inputs "NAME.<input>", the outputs
// "NAME.out", "NAME.out1", ..., a weight "NAME.w" and the gradients "NAME.grad.<input>" of (out * w).sum().
// Each test below maps case names to tapegrad calls; one runner loads a family's file, runs every case, and
// compares outputs and gradients (float64, max |diff| <= 1e-10).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "parity.h"
#include "tapegrad.h"

using tg::Tensor;

namespace {

using namespace tg_test;
using OpFn = std::function<std::vector<Tensor>(const Inputs&)>;
using Table = std::map<std::string, OpFn>;

// The op for a case: its exact name, or the name before '@' ("exp@0d" runs "exp").
const OpFn* find_op(const Table& table, const std::string& name, std::set<std::string>& used) {
  for (const std::string& key : {name, name.substr(0, name.find('@'))}) {
    auto it = table.find(key);
    if (it != table.end()) {
      used.insert(key);
      return &it->second;
    }
  }
  return nullptr;
}

void run_family(const std::string& family, const Table& table) {
  auto cases = load_cases(kFixtures + "/" + family + ".safetensors");
  CHECK(!cases.empty());
  std::set<std::string> used;
  for (auto& [name, c] : cases) {
    const OpFn* op = find_op(table, name, used);
    CHECK_MESSAGE(op != nullptr, "no tapegrad op for fixture case ", family, "/", name);
    if (!op) continue;
    std::string summary;
    try {
      INFO(family, "/", name);
      for (auto& [in, t] : c.inputs)
        if (t.is_floating_point()) t.requires_grad_();
      std::vector<Tensor> outs = (*op)(c.inputs);
      CHECK(outs.size() == c.outs.size());
      if (outs.size() != c.outs.size()) continue;
      for (auto& [i, want] : c.outs)
        compare(i == 0 ? "out" : "out" + std::to_string(i), outs[i], want, summary);
      if (c.w.defined()) {
        (outs[0] * c.w).sum().backward();
        for (auto& [in, want] : c.grads) compare("grad." + in, c.inputs.at(in).grad(), want, summary);
      }
    } catch (const std::exception& e) {
      FAIL_CHECK(family, "/", name, " threw: ", e.what());
      continue;
    }
    MESSAGE(family, "/", name, ":", summary);
  }
  for (const auto& [key, fn] : table) CHECK_MESSAGE(used.count(key), "no fixture case for table entry ", key);
}

// Adapters from ops of named inputs to the runner's OpFn.
OpFn unary(std::function<Tensor(const Tensor&)> f) {
  return [f](const Inputs& in) { return std::vector<Tensor>{f(in.at("x"))}; };
}
OpFn binary(std::function<Tensor(const Tensor&, const Tensor&)> f) {
  return [f](const Inputs& in) { return std::vector<Tensor>{f(in.at("a"), in.at("b"))}; };
}
OpFn pair(std::function<std::tuple<Tensor, Tensor>(const Tensor&)> f) {  // values and indices
  return [f](const Inputs& in) {
    auto [v, i] = f(in.at("x"));
    return std::vector<Tensor>{v, i};
  };
}
OpFn custom(std::function<Tensor(const Inputs&)> f) {
  return [f](const Inputs& in) { return std::vector<Tensor>{f(in)}; };
}

}  // namespace

TEST_SUITE("parity") {

TEST_CASE("parity: unary ops") {
  const std::map<std::string, std::function<Tensor(const Tensor&)>> ops = {
      {"neg", [](const Tensor& x) { return tg::neg(x); }},
      {"exp", [](const Tensor& x) { return tg::exp(x); }},
      {"log", [](const Tensor& x) { return tg::log(x); }},
      {"sqrt", [](const Tensor& x) { return tg::sqrt(x); }},
      {"rsqrt", [](const Tensor& x) { return tg::rsqrt(x); }},
      {"abs", [](const Tensor& x) { return tg::abs(x); }},
      {"tanh", [](const Tensor& x) { return tg::tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return tg::sigmoid(x); }},
      {"relu", [](const Tensor& x) { return tg::relu(x); }},
      {"gelu", [](const Tensor& x) { return tg::gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return tg::gelu(x, "tanh"); }},
      {"silu", [](const Tensor& x) { return tg::silu(x); }},
      {"softplus", [](const Tensor& x) { return tg::softplus(x); }},
      {"softplus_beta2", [](const Tensor& x) { return tg::softplus(x, 2.0, 5.0); }},
      {"square", [](const Tensor& x) { return tg::square(x); }},
      {"pow_scalar", [](const Tensor& x) { return tg::pow(x, 2.5); }},
      {"clamp", [](const Tensor& x) { return tg::clamp(x, -0.5, 0.5); }},
      {"clamp_min", [](const Tensor& x) { return tg::clamp_min(x, -0.3); }},
      {"clamp_max", [](const Tensor& x) { return tg::clamp_max(x, 0.3); }},
      {"sin", [](const Tensor& x) { return tg::sin(x); }},
      {"cos", [](const Tensor& x) { return tg::cos(x); }},
  };
  Table table;
  for (const auto& [name, f] : ops) table[name] = unary(f);
  run_family("unary", table);
}

TEST_CASE("parity: binary ops with broadcasting, where, masked_fill, comparisons") {
  const std::map<std::string, std::function<Tensor(const Tensor&, const Tensor&)>> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return tg::add(a, b); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return tg::sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return tg::mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return tg::div(a, b); }},
      {"pow", [](const Tensor& a, const Tensor& b) { return tg::pow(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return tg::maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return tg::minimum(a, b); }},
      {"lt", [](const Tensor& a, const Tensor& b) { return tg::lt(a, b); }},
      {"eq", [](const Tensor& a, const Tensor& b) { return tg::eq(a, b); }},
  };
  Table table;
  for (const auto& [name, f] : ops) table[name] = binary(f);
  table["where"] = custom([](const Inputs& in) { return tg::where(in.at("cond"), in.at("a"), in.at("b")); });
  table["masked_fill"] = custom([](const Inputs& in) { return tg::masked_fill(in.at("x"), in.at("mask"), -1.5); });
  run_family("binary", table);
}

TEST_CASE("parity: reductions, softmax, cumsum") {
  Table table;
  const std::map<std::string, std::function<Tensor(const Tensor&, const tg::Shape&, bool)>> over_dims = {
      {"sum", [](const Tensor& x, const tg::Shape& d, bool k) { return tg::sum(x, d, k); }},
      {"mean", [](const Tensor& x, const tg::Shape& d, bool k) { return tg::mean(x, d, k); }},
  };
  const std::map<std::string, tg::Shape> dims = {{"d1", {1}}, {"d02", {0, 2}}};
  for (const auto& [op, f] : over_dims) {
    for (const auto& [tag, d] : dims)
      for (bool keep : {false, true})
        table[op + "_" + tag + (keep ? "_keep" : "")] = unary([f, d, keep](const Tensor& x) { return f(x, d, keep); });
  }
  table["sum_all"] = unary([](const Tensor& x) { return tg::sum(x); });
  table["mean_all"] = unary([](const Tensor& x) { return tg::mean(x); });
  table["max_all"] = unary([](const Tensor& x) { return tg::max(x); });
  table["max_d1"] = pair([](const Tensor& x) { return tg::max(x, 1); });
  table["max_d1_keep"] = pair([](const Tensor& x) { return tg::max(x, 1, true); });
  table["min_d1"] = pair([](const Tensor& x) { return tg::min(x, 1); });
  table["argmax_all"] = unary([](const Tensor& x) { return tg::argmax(x); });
  table["argmax_d1"] = unary([](const Tensor& x) { return tg::argmax(x, 1); });
  table["var_d1_c1"] = unary([](const Tensor& x) { return tg::var(x, {1}, 1, false); });
  table["var_d1_c0"] = unary([](const Tensor& x) { return tg::var(x, {1}, 0, false); });
  table["var_d02_c1_keep"] = unary([](const Tensor& x) { return tg::var(x, {0, 2}, 1, true); });
  table["logsumexp_dlast"] = unary([](const Tensor& x) { return tg::logsumexp(x, {-1}); });
  table["cumsum_d1"] = unary([](const Tensor& x) { return tg::cumsum(x, 1); });
  for (const auto& [tag, dim] : std::map<std::string, int64_t>{{"dlast", -1}, {"d0", 0}}) {
    table["softmax_" + tag] = unary([dim](const Tensor& x) { return tg::softmax(x, dim); });
    table["log_softmax_" + tag] = unary([dim](const Tensor& x) { return tg::log_softmax(x, dim); });
  }
  run_family("reduce", table);
}

TEST_CASE("parity: matmul family") {
  auto matmul = binary([](const Tensor& a, const Tensor& b) { return tg::matmul(a, b); });
  Table table;
  for (const char* name : {"matmul_2d", "matmul_batched", "matmul_bcast", "matmul_1d_2d", "matmul_2d_1d", "matmul_1d_1d"})
    table[name] = matmul;
  table["mm"] = binary([](const Tensor& a, const Tensor& b) { return tg::mm(a, b); });
  table["bmm"] = binary([](const Tensor& a, const Tensor& b) { return tg::bmm(a, b); });
  table["outer"] = binary([](const Tensor& a, const Tensor& b) { return tg::outer(a, b); });
  run_family("matmul", table);
}

TEST_CASE("parity: indexing and joining") {
  Table table;
  for (int64_t d : {0, 1}) {
    table["index_select_d" + std::to_string(d)] =
        custom([d](const Inputs& in) { return tg::index_select(in.at("x"), d, in.at("idx")); });
    table["gather_d" + std::to_string(d)] = custom([d](const Inputs& in) { return tg::gather(in.at("x"), d, in.at("idx")); });
  }
  table["scatter_add_d1"] = custom([](const Inputs& in) { return tg::scatter_add(in.at("x"), 1, in.at("idx"), in.at("src")); });
  table["index_add_d0"] = custom([](const Inputs& in) { return tg::index_add(in.at("x"), 0, in.at("idx"), in.at("src")); });
  table["embedding"] = custom([](const Inputs& in) { return tg::embedding(in.at("weight"), in.at("idx")); });
  table["one_hot"] = custom([](const Inputs& in) { return tg::one_hot(in.at("idx"), 4); });
  table["one_hot@auto"] = custom([](const Inputs& in) { return tg::one_hot(in.at("idx")); });
  table["cat_d0"] = custom([](const Inputs& in) { return tg::cat({in.at("a"), in.at("b")}, 0); });
  table["cat_d1"] = custom([](const Inputs& in) { return tg::cat({in.at("a"), in.at("b"), in.at("c")}, 1); });
  for (int64_t d : {0, 1, -1})
    table["stack_d" + std::to_string(d)] =
        custom([d](const Inputs& in) { return tg::stack({in.at("a"), in.at("b"), in.at("c")}, d); });
  for (int64_t diag : {-1, 0, 1}) {
    table["tril_" + std::to_string(diag)] = unary([diag](const Tensor& x) { return tg::tril(x, diag); });
    table["triu_" + std::to_string(diag)] = unary([diag](const Tensor& x) { return tg::triu(x, diag); });
  }
  run_family("index", table);
}

}  // TEST_SUITE("parity")
