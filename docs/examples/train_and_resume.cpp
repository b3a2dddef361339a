// The training loop of docs/optimizers.md and docs/checkpoints.md: an MLP fitted with AdamW (two param groups),
// a warm-up + cosine schedule, gradient clipping, gradient noise and gradient accumulation; it checkpoints at
// step 30, and a second, fresh set of objects resumed from the file reproduces the last 30 losses bit for bit.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;
namespace optim = tg::optim;

struct Run {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::AdamW> opt;
  std::unique_ptr<optim::WarmupCosineLR> sched;
  optim::GradientNoise noise{/*eta=*/1e-4, /*gamma=*/0.55, /*seed=*/1};

  explicit Run(uint64_t seed) {
    tg::manual_seed(seed);
    model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(2, 32), std::make_shared<nn::Tanh>(),
                                             std::make_shared<nn::Linear>(32, 1));
    // Decay the weights, not the biases.
    std::vector<Tensor> weights, biases;
    for (auto& [name, p] : model->named_parameters()) (name.ends_with("bias") ? biases : weights).push_back(p);
    opt = std::make_unique<optim::AdamW>(
        std::vector<optim::ParamGroup>{{.params = weights, .weight_decay = 0.01}, {.params = biases, .weight_decay = 0}},
        optim::AdamOptions{.lr = 1e-2});
    sched = std::make_unique<optim::WarmupCosineLR>(*opt, /*warmup_steps=*/10, /*total_steps=*/60, /*min_lr=*/1e-3);
  }

  // One optimizer step over a batch of 64, as 4 micro-batches of 16: the gradients of the 4 backward calls add up,
  // so each micro-batch loss is divided by 4.
  float step() {
    const int micro = 4;
    float total = 0;
    opt->zero_grad();
    for (int m = 0; m < micro; ++m) {
      Tensor x = tg::rand({16, 2}) * 2.0 - 1.0;
      Tensor y = (x.select(1, 0) * x.select(1, 1)).unsqueeze(1);  // learn x0 * x1
      Tensor loss = nn::functional::mse_loss(model->forward(x), y) / micro;
      loss.backward();
      total += loss.item<float>();
    }
    optim::clip_grad_norm_(opt->parameters(), 1.0);
    noise.apply(*opt);
    opt->step();
    sched->step();
    return total;
  }

  std::map<std::string, Tensor> extras() const {
    std::map<std::string, Tensor> e;
    for (auto& [k, t] : sched->state_dict()) e["sched." + k] = t;
    for (auto& [k, t] : noise.state_dict()) e["noise." + k] = t;
    return e;
  }
  void load_extras(const std::map<std::string, Tensor>& e) {
    std::map<std::string, Tensor> s, n;
    for (auto& [k, t] : e) (k.starts_with("sched.") ? s : n)[k.substr(6)] = t;
    sched->load_state_dict(s);
    noise.load_state_dict(n);
  }
};

int main() {
  const std::string path = (std::filesystem::temp_directory_path() / "tg_train_and_resume.safetensors").string();
  std::vector<float> first, second;
  {
    Run run(0);
    for (int s = 0; s < 60; ++s) {
      if (s == 30) tg::save_checkpoint(path, *run.model, *run.opt, s, tg::default_generator(), run.extras());
      first.push_back(run.step());
    }
  }
  {
    Run run(12345);  // other weights; everything that matters comes from the file
    std::map<std::string, Tensor> extra;
    int64_t start = tg::load_checkpoint(path, *run.model, *run.opt, tg::default_generator(), &extra);
    run.load_extras(extra);
    for (int64_t s = start; s < 60; ++s) second.push_back(run.step());
  }
  std::filesystem::remove(path);
  std::printf("loss: step 0 %.4f, step 30 %.4f, step 59 %.4f\n", first[0], first[30], first[59]);
  bool same = second.size() == 30;
  for (size_t i = 0; same && i < second.size(); ++i) same = second[i] == first[30 + i];
  std::printf("resumed run reproduces steps 30..59 exactly: %s\n", same ? "yes" : "NO");
  return same && first[59] < 0.5f * first[0] ? 0 : 1;
}
