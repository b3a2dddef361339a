// nn::Module and the layers: registration and dotted names, traversal, train/eval, to(dtype), state_dict round
// trips through safetensors, load_state_dict errors, summary, containers, every layer gradchecked in float64, and
// the initialisers' statistics.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;

namespace {

// A transformer-shaped tree, for the names: blocks.<i>.attn.qkv.weight and so on.
struct Attention : nn::Module {
  std::shared_ptr<nn::Linear> qkv, proj;
  Attention(int64_t d) {
    qkv = register_module("qkv", std::make_shared<nn::Linear>(d, 3 * d));
    proj = register_module("proj", std::make_shared<nn::Linear>(d, d, false));
    register_buffer("mask", tg::tril(tg::ones({4, 4})));
    register_buffer("cache", tg::zeros({2}), /*persistent=*/false);
  }
};
struct Block : nn::Module {
  std::shared_ptr<nn::LayerNorm> ln;
  std::shared_ptr<Attention> attn;
  Block(int64_t d) {
    ln = register_module("ln", std::make_shared<nn::LayerNorm>(tg::Shape{d}));
    attn = register_module("attn", std::make_shared<Attention>(d));
  }
};
struct Net : nn::Module {
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::Linear> head;
  Tensor scale;
  Net(int64_t vocab = 10, int64_t d = 4, int64_t layers = 2) {
    emb = register_module("emb", std::make_shared<nn::Embedding>(vocab, d));
    blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
    for (int64_t i = 0; i < layers; ++i) blocks->push_back(std::make_shared<Block>(d));
    head = register_module("head", std::make_shared<nn::Linear>(d, vocab));
    scale = register_parameter("scale", tg::ones({1}));
  }
};

std::vector<std::string> names(const nn::NamedTensors& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const tg::Error& e) {
    return e.what();
  }
  return "no error";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void check_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& xs) {
  std::string report;
  CHECK_MESSAGE(tg::gradcheck(fn, xs, {}, &report), report);
}

}  // namespace

TEST_SUITE("nn") {

TEST_CASE("nn module: dotted names for nested modules, in registration order") {
  Net net;
  std::vector<std::string> want = {"scale", "emb.weight", "blocks.0.ln.weight", "blocks.0.ln.bias",
                                   "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight",
                                   "blocks.1.ln.weight", "blocks.1.ln.bias", "blocks.1.attn.qkv.weight",
                                   "blocks.1.attn.qkv.bias", "blocks.1.attn.proj.weight", "head.weight", "head.bias"};
  CHECK(names(net.named_parameters()) == want);
  CHECK(net.parameters().size() == want.size());
  CHECK(names(net.named_parameters(false)) == std::vector<std::string>{"scale"});
  CHECK(names(net.named_buffers()) ==
        std::vector<std::string>{"blocks.0.attn.mask", "blocks.0.attn.cache", "blocks.1.attn.mask", "blocks.1.attn.cache"});
  // state_dict: parameters and persistent buffers, each module's own before its children's.
  auto sd = names(net.state_dict());
  CHECK(sd.size() == want.size() + 2);
  CHECK(std::find(sd.begin(), sd.end(), "blocks.0.attn.mask") != sd.end());
  CHECK(std::find(sd.begin(), sd.end(), "blocks.0.attn.cache") == sd.end());
  std::vector<std::string> mods;
  for (auto& [n, m] : net.named_modules()) mods.push_back(n + ":" + m->name());
  CHECK(mods == std::vector<std::string>{":Net", "emb:Embedding", "blocks:ModuleList", "blocks.0:Block",
                                         "blocks.0.ln:LayerNorm", "blocks.0.attn:Attention", "blocks.0.attn.qkv:Linear",
                                         "blocks.0.attn.proj:Linear", "blocks.1:Block", "blocks.1.ln:LayerNorm",
                                         "blocks.1.attn:Attention", "blocks.1.attn.qkv:Linear",
                                         "blocks.1.attn.proj:Linear", "head:Linear"});
  CHECK(net.children().size() == 3);
  CHECK(net.named_children()[1].first == "blocks");
  CHECK(net.blocks->at<Block>(1)->attn->qkv->out_features == 12);
  CHECK_THROWS_AS(net.blocks->at<nn::Linear>(0), tg::Error);
  CHECK_THROWS_AS((*net.blocks)[2], tg::Error);
  int64_t count = 0;
  for (const auto& b : *net.blocks) count += b->num_parameters();
  CHECK(count == 2 * (4 + 4 + 48 + 12 + 16));
  CHECK(net.num_parameters() == 1 + 40 + count + 40 + 10);
}

TEST_CASE("nn module: tied weights are listed once, registration is checked") {
  struct Tied : nn::Module {
    std::shared_ptr<nn::Embedding> emb;
    std::shared_ptr<nn::Linear> head;
    Tied() {
      emb = register_module("emb", std::make_shared<nn::Embedding>(6, 3));
      head = register_module("head", std::make_shared<nn::Linear>(3, 6, false));
    }
  } tied;
  // Tie as in GPT-2: the head is the embedding matrix (shape [6, 3] either way).
  tied.head->weight = tied.head->set_parameter("weight", tied.emb->weight);
  CHECK(names(tied.named_parameters()) == std::vector<std::string>{"emb.weight"});
  CHECK(names(tied.state_dict()) == std::vector<std::string>{"emb.weight", "head.weight"});
  tied.head->forward(tied.emb->forward(tg::tensor(std::vector<int64_t>{1, 2}))).sum().backward();
  CHECK(tied.emb->weight.grad().defined());  // both uses accumulate into the one tensor
  CHECK(contains(error_of([&] { tied.head->set_parameter("bias", tg::ones({6})); }), "no parameter 'bias'"));
  struct Shared : nn::Module {
    std::shared_ptr<nn::Linear> a;
    Shared() {
      a = register_module("a", std::make_shared<nn::Linear>(2, 2));
      register_module("b", a);
    }
  } shared;
  CHECK(names(shared.named_parameters()) == std::vector<std::string>{"a.weight", "a.bias"});
  CHECK(names(shared.state_dict()).size() == 4);  // state_dict keeps both names, as PyTorch

  struct Bad : nn::Module {
    void run() {
      register_parameter("w", tg::ones({2}));
      CHECK(contains(error_of([&] { register_parameter("w", tg::ones({2})); }), "'w' is already registered"));
      CHECK(contains(error_of([&] { register_buffer("a.b", tg::ones({2})); }), "contains a '.'"));
      CHECK(contains(error_of([&] { register_module("", std::make_shared<nn::ReLU>()); }), "name is empty"));
      CHECK(contains(error_of([&] { register_parameter("i", tg::ones({2}, tg::kInt64)); }), "must be floating"));
      // A tensor with history becomes a leaf parameter.
      Tensor x = tg::ones({2}).requires_grad_();
      Tensor p = register_parameter("derived", x * 2.0);
      CHECK(p.is_leaf());
      CHECK(p.requires_grad());
      Tensor frozen = register_parameter("frozen", tg::ones({3}), false);
      CHECK(!frozen.requires_grad());
    }
  } bad;
  bad.run();
  CHECK(bad.num_parameters() == 7);
  CHECK(bad.num_parameters(/*trainable_only=*/true) == 4);
}

TEST_CASE("nn module: train/eval reaches every submodule and switches Dropout") {
  auto seq = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(8, 8), std::make_shared<nn::Dropout>(0.5));
  CHECK(seq->is_training());
  Tensor x = tg::randn({4, 8});
  Tensor a = seq->forward(x), b = seq->forward(x);
  CHECK(!tg::equal(a, b));  // two masks
  seq->eval();
  CHECK(!(*seq)[1]->is_training());
  Tensor c = seq->forward(x), d = seq->forward(x);
  CHECK(tg::equal(c, d));
  CHECK(tg::equal(c, std::dynamic_pointer_cast<nn::Linear>((*seq)[0])->forward(x)));
  seq->train();
  CHECK((*seq)[1]->is_training());
}

TEST_CASE("nn module: zero_grad and to(dtype) keep the layers' handles valid") {
  nn::Linear lin(3, 2);
  lin.forward(tg::randn({4, 3})).sum().backward();
  CHECK(lin.weight.grad().defined());
  lin.zero_grad();
  CHECK(!lin.weight.grad().defined());
  CHECK(!lin.bias.grad().defined());

  auto before = lin.weight.to_vector<double>();
  lin.forward(tg::randn({4, 3})).sum().backward();
  lin.to(tg::kFloat64);
  CHECK(lin.weight.dtype() == tg::kFloat64);  // the member sees the conversion
  CHECK(lin.named_parameters()[0].second.dtype() == tg::kFloat64);
  CHECK(lin.weight.grad().dtype() == tg::kFloat64);
  CHECK(lin.weight.requires_grad());
  CHECK(lin.weight.to_vector<double>() == before);
  CHECK(lin.forward(tg::randn({2, 3}, tg::kFloat64)).dtype() == tg::kFloat64);
  // Integer buffers keep their dtype.
  struct WithIndex : nn::Module {
    Tensor idx;
    WithIndex() { idx = register_buffer("idx", tg::arange(3)); }
  } wi;
  wi.to(tg::kFloat64);
  CHECK(wi.idx.dtype() == tg::kInt64);
  CHECK_THROWS_AS(wi.to(tg::kInt64), tg::Error);
  lin.to(tg::Device::cpu());  // a no-op on the CPU
  CHECK(lin.weight.device() == tg::Device::cpu());
}

TEST_CASE("nn module: state_dict round trip through safetensors") {
  tg::manual_seed(10);
  Net a;
  a.blocks->at<Block>(0)->attn->named_buffers();  // (buffers travel with the state too)
  auto path = (std::filesystem::temp_directory_path() / "tg_nn_state.safetensors").string();
  std::map<std::string, Tensor> sd;
  for (auto& [n, t] : a.state_dict()) sd[n] = t;
  tg::io::save_safetensors(path, sd);
  tg::manual_seed(11);
  Net b;  // a different initialisation
  Tensor idx = tg::tensor(std::vector<int64_t>{1, 2, 3});
  auto run = [&](Net& n) { return n.head->forward(n.emb->forward(idx)); };
  CHECK(!tg::equal(run(a), run(b)));
  auto result = b.load_state_dict(tg::io::load_safetensors(path));
  CHECK(result.missing.empty());
  CHECK(result.unexpected.empty());
  CHECK(tg::equal(run(a), run(b)));
  for (auto& [n, t] : a.state_dict()) {
    INFO(n);
    Tensor other;
    for (auto& [m, u] : b.state_dict())
      if (m == n) other = u;
    CHECK(tg::equal(t, other));
  }
  // Loading copies values into the existing tensors: the layer's handle still works and still requires grad.
  CHECK(b.head->weight.requires_grad());
  CHECK(b.head->weight.is_same(b.named_parameters().back().second) == false);  // (last is head.bias)
  std::remove(path.c_str());
}

TEST_CASE("nn module: load_state_dict names missing, unexpected and wrongly shaped entries") {
  nn::Linear lin(3, 2);
  std::map<std::string, Tensor> ok{{"weight", tg::ones({2, 3})}, {"bias", tg::ones({2})}};
  lin.load_state_dict(ok);
  CHECK(lin.weight.to_vector<float>() == std::vector<float>(6, 1.0f));

  auto missing = ok;
  missing.erase("bias");
  std::string m = error_of([&] { lin.load_state_dict(missing); });
  CHECK(contains(m, "Linear.load_state_dict"));
  CHECK(contains(m, "missing entries: 'bias'"));

  auto extra = ok;
  extra["running_mean"] = tg::zeros({2});
  m = error_of([&] { lin.load_state_dict(extra); });
  CHECK(contains(m, "unexpected entries: 'running_mean'"));

  auto shaped = ok;
  shaped["weight"] = tg::zeros({3, 2});
  m = error_of([&] { lin.load_state_dict(shaped); });
  CHECK(contains(m, "size mismatch for 'weight': checkpoint has shape [3, 2], the module has [2, 3]"));
  // A failed load changes nothing.
  CHECK(lin.weight.to_vector<float>() == std::vector<float>(6, 1.0f));

  // strict = false reports instead of throwing, but a shape mismatch is still an error.
  auto r = lin.load_state_dict(missing, false);
  CHECK(r.missing == std::vector<std::string>{"bias"});
  r = lin.load_state_dict(extra, false);
  CHECK(r.unexpected == std::vector<std::string>{"running_mean"});
  CHECK_THROWS_AS(lin.load_state_dict(shaped, false), tg::Error);
  // Values convert to the module's dtype.
  lin.load_state_dict({{"weight", tg::full({2, 3}, 0.5, tg::kFloat64)}, {"bias", tg::zeros({2}, tg::kFloat64)}});
  CHECK(lin.weight.dtype() == tg::kFloat32);
  CHECK(lin.weight.to_vector<float>() == std::vector<float>(6, 0.5f));
}

TEST_CASE("nn module: summary is a table of names, shapes and counts with the total") {
  nn::Sequential mlp(std::make_shared<nn::Linear>(784, 512), std::make_shared<nn::ReLU>(),
                     std::make_shared<nn::Linear>(512, 10));
  std::string s = mlp.summary();
  MESSAGE(s);
  CHECK(contains(s, "Sequential"));
  CHECK(contains(s, "0.weight"));
  CHECK(contains(s, "[512, 784]"));
  CHECK(contains(s, "401408"));
  CHECK(contains(s, "2.bias"));
  CHECK(contains(s, "total: 407050 parameters (407050 trainable) in 4 tensors"));
  CHECK(mlp.num_parameters() == 407050);
}

TEST_CASE("nn module: Sequential chains its children, activations are modules") {
  tg::manual_seed(12);
  auto l1 = std::make_shared<nn::Linear>(3, 5), l2 = std::make_shared<nn::Linear>(5, 2);
  nn::Sequential seq(l1, std::make_shared<nn::GELU>(), l2, std::make_shared<nn::Tanh>());
  seq.push_back(std::make_shared<nn::Sigmoid>());
  seq.push_back(std::make_shared<nn::SiLU>());
  Tensor x = tg::randn({4, 3});
  Tensor want = tg::silu(tg::sigmoid(tg::tanh(l2->forward(tg::gelu(l1->forward(x))))));
  CHECK(tg::allclose(seq(x), want, 0, 0));
  CHECK(seq.size() == 6);
  CHECK(seq[1]->name() == "GELU");
  CHECK(names(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  // Nested Sequentials name their children with nested indices.
  nn::Sequential outer(std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(2, 2)),
                       std::make_shared<nn::ReLU>());
  CHECK(names(outer.named_parameters()) == std::vector<std::string>{"0.0.weight", "0.0.bias"});
}

TEST_CASE("nn module: every layer is gradchecked in float64 through its parameters") {
  tg::manual_seed(13);
  // Runs the module with its parameters replaced by gradcheck's inputs (same shapes): v[0] is the input.
  auto check_layer = [](nn::UnaryModule& m, Tensor x) {
    m.to(tg::kFloat64);
    std::vector<Tensor> xs{x};
    auto params = m.named_parameters();
    for (auto& [n, p] : params) xs.push_back(p);
    check_gradcheck([&m](const std::vector<Tensor>& v) { return m.forward(v[0]); }, xs);
  };
  nn::Linear lin(4, 3);
  check_layer(lin, tg::randn({2, 4}, tg::kFloat64).requires_grad_());
  nn::LayerNorm ln(tg::Shape{5});
  {
    tg::NoGradGuard g;
    ln.weight.copy_(tg::randn({5}));
    ln.bias.copy_(tg::randn({5}));
  }
  check_layer(ln, tg::randn({3, 5}, tg::kFloat64).requires_grad_());
  nn::RMSNorm rms(tg::Shape{5}, 1e-6);
  check_layer(rms, tg::randn({3, 5}, tg::kFloat64).requires_grad_());
  nn::Conv1d conv({.in_channels = 4, .out_channels = 6, .kernel_size = 3, .padding = 1, .groups = 2});
  check_layer(conv, tg::randn({2, 4, 5}, tg::kFloat64).requires_grad_());
  nn::Conv1d causal({.in_channels = 3, .out_channels = 3, .kernel_size = 4, .groups = 3, .causal = true});
  check_layer(causal, tg::randn({2, 3, 6}, tg::kFloat64).requires_grad_());
  CHECK(causal.forward(tg::randn({2, 3, 6}, tg::kFloat64)).sizes() == tg::Shape{2, 3, 6});
  nn::Embedding emb(7, 3);
  check_layer(emb, tg::tensor(std::vector<int64_t>{0, 6, 2, 2}));
  nn::Dropout drop(0.0);
  check_layer(drop, tg::randn({3}, tg::kFloat64).requires_grad_());
  nn::GELU gelu("tanh");
  check_layer(gelu, tg::randn({3}, tg::kFloat64).requires_grad_());
}

TEST_CASE("nn module: default initialisations follow PyTorch") {
  tg::manual_seed(14);
  nn::Linear lin(400, 300);
  double bound = 1.0 / std::sqrt(400.0);
  auto w = lin.weight.to_vector<double>();
  double lo = *std::min_element(w.begin(), w.end()), hi = *std::max_element(w.begin(), w.end());
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(lo < -0.99 * bound);  // 120000 draws fill the interval
  CHECK(hi > 0.99 * bound);
  auto b = lin.bias.to_vector<double>();
  CHECK(*std::max_element(b.begin(), b.end()) <= bound);
  CHECK(*std::min_element(b.begin(), b.end()) >= -bound);

  nn::Conv1d conv({.in_channels = 8, .out_channels = 4, .kernel_size = 3, .groups = 2});
  double cb = 1.0 / std::sqrt(4.0 * 3.0);  // fan_in = C_in / groups * K
  CHECK(tg::amax(tg::abs(conv.weight), {}).item<double>() <= cb);
  CHECK(tg::amax(tg::abs(conv.weight), {}).item<double>() > 0.8 * cb);

  nn::Embedding emb(1000, 100, 3);
  double mean = tg::mean(emb.weight).item<double>();
  double sd = std::sqrt(tg::var(emb.weight, {0, 1}).item<double>());
  CHECK(std::abs(mean) < 0.01);
  CHECK(std::abs(sd - 1.0) < 0.01);
  CHECK(tg::amax(tg::abs(emb.weight.select(0, 3)), {}).item<double>() == 0.0);

  nn::LayerNorm ln(tg::Shape{6});
  CHECK(ln.weight.to_vector<float>() == std::vector<float>(6, 1.0f));
  CHECK(ln.bias.to_vector<float>() == std::vector<float>(6, 0.0f));
  nn::LayerNorm plain(tg::Shape{6}, 1e-5, false);
  CHECK(plain.parameters().empty());
}

TEST_CASE("nn init: bounds, moments, gains and orthogonality") {
  namespace init = tg::nn::init;
  tg::manual_seed(15);
  CHECK(init::calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  CHECK(init::calculate_gain("leaky_relu", std::sqrt(5.0)) == doctest::Approx(std::sqrt(2.0 / 6.0)));
  CHECK(init::calculate_gain("leaky_relu") == doctest::Approx(std::sqrt(2.0 / 1.0001)));
  CHECK_THROWS_AS(init::calculate_gain("swish"), tg::Error);
  auto [fi, fo] = init::calculate_fan_in_and_fan_out(tg::empty({6, 4, 3}));
  CHECK(fi == 12);
  CHECK(fo == 18);
  CHECK_THROWS_AS(init::calculate_fan_in_and_fan_out(tg::empty({6})), tg::Error);

  auto range = [](const Tensor& t) {
    auto v = t.to_vector<double>();
    return std::pair{*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
  };
  Tensor w = tg::empty({256, 128});
  init::kaiming_uniform_(w, 0.0, "fan_in", "relu");
  double kb = std::sqrt(2.0) * std::sqrt(3.0 / 128.0);
  auto [lo, hi] = range(w);
  CHECK(lo >= -kb);
  CHECK(hi <= kb);
  CHECK(hi > 0.98 * kb);
  init::kaiming_normal_(w, 0.0, "fan_out", "relu");
  CHECK(std::sqrt(tg::var(w, {0, 1}).item<double>()) == doctest::Approx(std::sqrt(2.0 / 256.0)).epsilon(0.02));
  init::xavier_uniform_(w, 2.0);
  double xb = 2.0 * std::sqrt(6.0 / 384.0);
  std::tie(lo, hi) = range(w);
  CHECK(lo >= -xb);
  CHECK(hi <= xb);
  init::xavier_normal_(w);
  CHECK(std::sqrt(tg::var(w, {0, 1}).item<double>()) == doctest::Approx(std::sqrt(2.0 / 384.0)).epsilon(0.02));
  init::normal_(w, 3.0, 0.5);
  CHECK(tg::mean(w).item<double>() == doctest::Approx(3.0).epsilon(0.01));
  init::uniform_(w, -2.0, -1.0);
  std::tie(lo, hi) = range(w);
  CHECK(lo >= -2.0);
  CHECK(hi < -1.0);
  init::constant_(w, 0.25);
  CHECK(tg::amax(tg::abs(w - 0.25), {}).item<double>() == 0.0);
  init::eye_(w);
  CHECK(tg::sum(w).item<double>() == 128.0);

  // Orthogonal: tall Q^T Q = I, wide Q Q^T = I, times the gain; a parameter that requires grad is fine.
  for (const tg::Shape& s : {tg::Shape{7, 4}, tg::Shape{4, 7}, tg::Shape{5, 5}, tg::Shape{3, 2, 2}}) {
    INFO(tg::shape_str(s));
    Tensor q = tg::empty(s, tg::kFloat64).requires_grad_();
    init::orthogonal_(q, 1.5);
    Tensor m = q.detach().reshape({s[0], -1});
    Tensor gram = m.size(0) >= m.size(1) ? tg::matmul(m.t(), m) : tg::matmul(m, m.t());
    Tensor eye = tg::eye(gram.size(0), tg::kFloat64) * 2.25;
    CHECK(tg::amax(tg::abs(gram - eye), {}).item<double>() < 1e-12);
  }
  // Seeded: the same seed gives the same initialisation.
  tg::manual_seed(99);
  nn::Linear a(5, 5);
  tg::manual_seed(99);
  nn::Linear b(5, 5);
  CHECK(tg::equal(a.weight, b.weight));
}

}  // TEST_SUITE("nn")
