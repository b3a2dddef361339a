// Checkpoints: a small MLP (Linear, ReLU, Dropout, Linear) trained with AdamW in two param groups, gradient clipping,
// gradient noise and a warm-up + cosine schedule, data and dropout masks drawn from the default generator. A run
// stopped at step k and resumed from its checkpoint, in fresh objects, gives bit-identical losses; bad files are
// clear errors that name the file and the entry and change nothing.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "tapegrad.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using doctest::Contains;
using tg::Tensor;
namespace nn = tg::nn;
namespace optim = tg::optim;

namespace {

using tg::testing::TempDir;

std::shared_ptr<nn::Sequential> make_model(uint64_t init_seed, int64_t hidden = 16) {
  tg::manual_seed(init_seed);
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, hidden), std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Dropout>(0.2), std::make_shared<nn::Linear>(hidden, 1));
}

// Everything a training run owns besides the model.
struct Trainer {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::AdamW> opt;
  std::unique_ptr<optim::WarmupCosineLR> sched;
  std::unique_ptr<optim::GradientNoise> noise;

  Trainer(uint64_t init_seed, uint64_t noise_seed) : model(make_model(init_seed)) {
    std::vector<Tensor> decay, no_decay;  // no weight decay on biases
    for (auto& [name, p] : model->named_parameters()) (name.ends_with("bias") ? no_decay : decay).push_back(p);
    opt = std::make_unique<optim::AdamW>(
        std::vector<optim::ParamGroup>{{.params = decay, .weight_decay = 0.1}, {.params = no_decay, .weight_decay = 0.0}},
        optim::AdamOptions{.lr = 3e-2});
    sched = std::make_unique<optim::WarmupCosineLR>(*opt, 3, 20, 1e-3);
    noise = std::make_unique<optim::GradientNoise>(1e-3, 0.55, noise_seed);
  }

  // Steps [from, to), appending the losses.
  void train(int from, int to, std::vector<float>& losses) {
    for (int s = from; s < to; ++s) {
      Tensor x = tg::randn({8, 4});
      Tensor y = x.sum(1, true) * 0.5 + 0.1;
      Tensor loss = nn::functional::mse_loss(model->forward(x), y);
      opt->zero_grad();
      loss.backward();
      optim::clip_grad_norm_(opt->parameters(), 1.0);
      noise->apply(*opt);
      opt->step();
      sched->step();
      losses.push_back(loss.item<float>());
    }
  }

  std::map<std::string, Tensor> extras() const {
    std::map<std::string, Tensor> e;
    for (auto& [k, t] : sched->state_dict()) e["sched." + k] = t;
    for (auto& [k, t] : noise->state_dict()) e["noise." + k] = t;
    return e;
  }
  void load_extras(const std::map<std::string, Tensor>& e) {
    std::map<std::string, Tensor> s, n;
    for (auto& [k, t] : e) (k.starts_with("sched.") ? s[k.substr(6)] : n[k.substr(6)]) = t;
    sched->load_state_dict(s);
    noise->load_state_dict(n);
  }
};

constexpr int kSteps = 20, kStop = 8;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_SUITE("optim") {

TEST_CASE("checkpoint: stop at step k, save, resume in fresh objects: bit-identical losses") {
  TempDir tmp;
  const std::string path = tmp.file("ckpt.safetensors");

  std::vector<float> straight;
  {
    Trainer t(42, 7);
    tg::manual_seed(1);
    t.train(0, kSteps, straight);
  }
  std::vector<float> saving;
  {
    Trainer t(42, 7);
    tg::manual_seed(1);
    t.train(0, kStop, saving);
    tg::save_checkpoint(path, *t.model, *t.opt, kStop, tg::default_generator(), t.extras());
    t.train(kStop, kSteps, saving);  // saving does not disturb the run
  }
  CHECK(saving == straight);

  std::vector<float> resumed;
  {
    Trainer t(999, 123);     // different weights and noise seed: everything must come from the file
    tg::manual_seed(31337);  // and a different default generator
    std::map<std::string, Tensor> extra;
    int64_t step = tg::load_checkpoint(path, *t.model, *t.opt, tg::default_generator(), &extra);
    CHECK(step == kStop);
    t.load_extras(extra);
    CHECK(t.sched->last_step() == kStop);
    CHECK(t.noise->step() == kStop);
    t.train(kStop, kSteps, resumed);
  }
  REQUIRE(resumed.size() == size_t(kSteps - kStop));
  for (int i = 0; i < kSteps - kStop; ++i)
    CHECK_MESSAGE(resumed[i] == straight[kStop + i], "step ", kStop + i, ": ", resumed[i], " vs ", straight[kStop + i]);

  // The file's layout.
  std::map<std::string, std::string> meta;
  auto all = tg::io::load_safetensors(path, &meta);
  CHECK(all.count("model.0.weight"));
  CHECK(all.count("model.3.bias"));
  CHECK(all.count("optim.state.0.0.exp_avg"));
  CHECK(all.count("optim.group.1.weight_decay"));
  CHECK(all.count("rng.state"));
  CHECK(all.count("extra.sched.t"));
  CHECK(all.at("step").item<int64_t>() == kStop);
  CHECK(meta.at("format") == "tapegrad-checkpoint-1");
  CHECK(meta.at("optimizer") == "AdamW");
  CHECK(meta.count("checksum.model.0.weight"));
  CHECK(!fs::exists(path + ".tmp"));
}

TEST_CASE("checkpoint: truncated, corrupt, mismatched and foreign files are errors that change nothing") {
  TempDir tmp;
  const std::string good = tmp.file("good.safetensors");
  Trainer t(42, 7);
  tg::manual_seed(1);
  std::vector<float> losses;
  t.train(0, 3, losses);
  tg::save_checkpoint(good, *t.model, *t.opt, 3, tg::default_generator(), t.extras());
  const std::string bytes = read_file(good);

  // A target whose state must survive every failed load.
  Trainer target(5, 5);
  const Tensor w_before = target.model->named_parameters()[0].second.detach().clone();
  tg::Generator rng(77);
  const uint64_t rng_before = rng.state_hash();
  auto expect_error = [&](const std::string& file, const std::vector<std::string>& parts, nn::Module* model = nullptr,
                          optim::Optimizer* opt = nullptr) {
    bool threw = false;
    try {
      tg::load_checkpoint(file, model ? *model : *target.model, opt ? *opt : *target.opt, rng);
    } catch (const tg::Error& e) {
      threw = true;
      const std::string msg = e.what();
      for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, msg, " lacks ", p);
    }
    CHECK_MESSAGE(threw, file, " loaded without an error");
    CHECK(tg::equal(target.model->named_parameters()[0].second, w_before));
    CHECK(target.opt->state(0, 0).step == 0);
    CHECK(rng.state_hash() == rng_before);
  };

  SUBCASE("truncated") {
    const std::string f = tmp.file("truncated.safetensors");
    write_file(f, bytes.substr(0, bytes.size() / 2));
    expect_error(f, {f, "truncated"});
    write_file(f, bytes.substr(0, 5));
    expect_error(f, {f});
  }
  SUBCASE("a flipped bit in the data names the corrupt entry") {
    const std::string f = tmp.file("corrupt.safetensors");
    std::string b = bytes;
    b[b.size() - 3] ^= 0x10;  // inside the last entry's data
    write_file(f, b);
    expect_error(f, {f, "is corrupt", "entry '"});
  }
  SUBCASE("a missing entry") {
    const std::string f = tmp.file("missing.safetensors");
    std::map<std::string, std::string> meta;
    auto all = tg::io::load_safetensors(good, &meta);
    all.erase("optim.state.0.1.exp_avg_sq");
    tg::io::save_safetensors(f, all, meta);
    expect_error(f, {f, "optim.state.0.1.exp_avg_sq", "missing"});
  }
  SUBCASE("a model of another shape") {
    auto other = make_model(1, 8);
    optim::AdamW opt(other->parameters());
    const Tensor before = other->named_parameters()[0].second.detach().clone();
    bool threw = false;
    try {
      tg::load_checkpoint(good, *other, opt, rng);
    } catch (const tg::Error& e) {
      threw = true;
      const std::string msg = e.what();
      CHECK_MESSAGE(msg.find(good) != std::string::npos, msg);
      CHECK_MESSAGE(msg.find("model.0.weight") != std::string::npos, msg);
      CHECK_MESSAGE(msg.find("[16, 4]") != std::string::npos, msg);
    }
    CHECK(threw);
    CHECK(tg::equal(other->named_parameters()[0].second, before));
  }
  SUBCASE("another optimizer") {
    optim::SGD sgd(target.model->parameters(), {.lr = 0.1});
    expect_error(good, {good, "AdamW", "SGD"}, nullptr, &sgd);
  }
  SUBCASE("an optimizer with other groups") {
    optim::AdamW one_group(target.model->parameters());
    expect_error(good, {good, "optim", "param group"}, nullptr, &one_group);
  }
  SUBCASE("a safetensors file that is not a checkpoint") {
    const std::string f = tmp.file("weights.safetensors");
    tg::io::save_safetensors(f, {{"w", tg::zeros({2})}});
    expect_error(f, {f, "not a tapegrad checkpoint"});
  }
  SUBCASE("no file") { expect_error(tmp.file("absent.safetensors"), {"absent.safetensors"}); }
}

TEST_CASE("checkpoint: a failed save leaves the previous checkpoint intact") {
  TempDir tmp;
  const std::string path = tmp.file("ckpt.safetensors");
  Trainer t(42, 7);
  tg::save_checkpoint(path, *t.model, *t.opt, 0, tg::default_generator());
  const std::string before = read_file(path);
  CHECK_THROWS_WITH_AS(tg::save_checkpoint(path, *t.model, *t.opt, 1, tg::default_generator(), {{"bad", Tensor()}}),
                       Contains("extra.bad"), tg::Error);
  CHECK(read_file(path) == before);
  CHECK_THROWS_AS(tg::save_checkpoint(tmp.file("no/such/dir/ckpt.safetensors"), *t.model, *t.opt, 1,
                                      tg::default_generator()),
                  tg::Error);
  CHECK(!fs::exists(path + ".tmp"));
}

}  // TEST_SUITE
