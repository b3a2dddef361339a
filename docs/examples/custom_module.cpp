// docs/modules.md's running example: a custom layer (a gated MLP block with a residual and a learned scale), built
// from registered parameters, a buffer and submodules, then composed into a model with a ModuleList. The program
// checks what the chapter claims: the dotted names, the summary, train/eval, to(float64) + gradcheck, and a
// state_dict round trip through a safetensors file. It exits non-zero on any failure, so the chapter is tested.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

// y = x + scale * down(silu(gate(norm(x))) * up(norm(x))), with dropout on the branch.
class GatedBlock : public nn::UnaryModule {
 public:
  GatedBlock(int64_t dim, int64_t hidden, double dropout = 0.1) {
    norm_ = register_module("norm", std::make_shared<nn::RMSNorm>(tg::Shape{dim}, 1e-6));
    gate_ = register_module("gate", std::make_shared<nn::Linear>(dim, hidden, /*bias=*/false));
    up_ = register_module("up", std::make_shared<nn::Linear>(dim, hidden, false));
    down_ = register_module("down", std::make_shared<nn::Linear>(hidden, dim, false));
    drop_ = register_module("drop", std::make_shared<nn::Dropout>(dropout));
    // A parameter of our own, initialised small so that the block starts close to the identity.
    scale_ = register_parameter("scale", tg::full({dim}, 0.1));
    // A buffer: state that is saved and moved with the module but not trained.
    calls_ = register_buffer("calls", tg::zeros({1}, tg::kInt64));
  }

  Tensor forward(const Tensor& x) override {
    {
      tg::NoGradGuard g;  // bookkeeping, not part of the computation
      calls_.add_(tg::ones({1}, tg::kInt64));
    }
    Tensor h = norm_->forward(x);
    Tensor branch = down_->forward(tg::silu(gate_->forward(h)) * up_->forward(h));
    return x + scale_ * drop_->forward(branch);
  }

  int64_t calls() const { return calls_.item<int64_t>(); }

 private:
  std::shared_ptr<nn::RMSNorm> norm_;
  std::shared_ptr<nn::Linear> gate_, up_, down_;
  std::shared_ptr<nn::Dropout> drop_;
  Tensor scale_, calls_;
};

// A small classifier: embedding, a stack of blocks, a final norm and a head.
class Model : public nn::Module {
 public:
  Model(int64_t vocab, int64_t dim, int64_t layers) {
    emb = register_module("emb", std::make_shared<nn::Embedding>(vocab, dim));
    blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
    for (int64_t i = 0; i < layers; ++i) blocks->push_back(std::make_shared<GatedBlock>(dim, 2 * dim));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(tg::Shape{dim}));
    head = register_module("head", std::make_shared<nn::Linear>(dim, vocab));
  }
  Tensor forward(const Tensor& tokens) {
    Tensor h = emb->forward(tokens);
    for (const auto& b : *blocks) h = std::static_pointer_cast<GatedBlock>(b)->forward(h);
    return head->forward(norm->forward(h));
  }
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> head;
};

int failures = 0;
void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "ok    " : "FAIL  ") << what << "\n";
  failures += !ok;
}

int main() {
  tg::manual_seed(0);
  auto model = std::make_shared<Model>(/*vocab=*/11, /*dim=*/8, /*layers=*/2);

  // 1. Names are dotted paths, as PyTorch's; a module's own parameters come before its children's.
  auto params = model->named_parameters();
  expect(params[1].first == "blocks.0.scale", "the first block's own parameter is blocks.0.scale");
  expect(params[2].first == "blocks.0.norm.weight", "then its children's: blocks.0.norm.weight");
  expect(params.back().first == "head.bias", "last parameter is head.bias");
  std::cout << model->summary();

  // 2. One training step's worth of gradient.
  Tensor tokens = tg::tensor(std::vector<int64_t>{1, 4, 2, 9, 0, 3}, {2, 3});
  Tensor targets = tg::tensor(std::vector<int64_t>{4, 2, 9, 0, 3, 5}, {2, 3});
  Tensor logits = model->forward(tokens);  // [2, 3, 11]
  Tensor loss = F::cross_entropy(logits.reshape({-1, 11}), targets.reshape({-1}));
  loss.backward();
  bool all_grads = true;
  for (auto& [name, p] : params) all_grads = all_grads && p.grad().defined();
  expect(all_grads, "every parameter got a gradient");
  expect(std::abs(loss.item<double>() - std::log(11.0)) < 1.5, "initial loss is near log(vocab)");
  model->zero_grad();

  // 3. eval() turns dropout off everywhere: two forwards agree.
  model->eval();
  expect(tg::equal(model->forward(tokens), model->forward(tokens)), "eval forward is deterministic");
  model->train();

  // 4. In float64 the custom block passes gradcheck (through its input and all its parameters).
  auto block = model->blocks->at<GatedBlock>(0);
  block->eval();  // no dropout: gradcheck needs a deterministic function
  block->to(tg::kFloat64);
  std::vector<Tensor> inputs{tg::randn({3, 8}, tg::kFloat64).requires_grad_()};
  for (auto& p : block->parameters()) inputs.push_back(p);
  std::string report;
  bool ok = tg::gradcheck([&](const std::vector<Tensor>& v) { return block->forward(v[0]); }, inputs, {}, &report);
  expect(ok, "GatedBlock passes gradcheck in float64" + (ok ? "" : ": " + report));
  expect(block->calls() > 0, "the buffer counted the forward calls");
  model->to(tg::kFloat32);

  // 5. state_dict -> safetensors -> a freshly initialised model: identical outputs.
  std::string path = (std::filesystem::temp_directory_path() / "custom_module.safetensors").string();
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : model->state_dict()) state[name] = t;
  tg::io::save_safetensors(path, state);
  tg::manual_seed(1);
  auto copy = std::make_shared<Model>(11, 8, 2);
  copy->load_state_dict(tg::io::load_safetensors(path));
  model->eval();
  copy->eval();
  expect(tg::equal(model->forward(tokens), copy->forward(tokens)), "a reloaded model computes the same logits");
  std::remove(path.c_str());

  // 6. A checkpoint that does not fit is a clear error.
  state.erase("head.bias");
  try {
    copy->load_state_dict(state);
    expect(false, "missing entry detected");
  } catch (const tg::Error& e) {
    expect(std::string(e.what()).find("missing entries: 'head.bias'") != std::string::npos,
           std::string("missing entry detected: ") + e.what());
  }
  return failures == 0 ? 0 : 1;
}
