// optim_study: two small optimizer experiments, side by side in one run.
//  1. "optimizers": the same character LSTM (Tiny Shakespeare, one layer of 128) trained from the same
//     initialisation on the same batches with Adam, AdamW, SPAM (Huang et al. 2025) and Adam + gradient noise
//     (Neelakantan et al. 2015). Reports each one's final training and validation loss and its number of loss
//     spikes: steps whose loss exceeds 2x the median of the previous --spike-window steps.
//  2. "deep": Neelakantan et al.'s very deep network, a 20-layer, width-50 ReLU MLP, on the 8x8 digits set
//     (data/corpora/digits), trained by plain SGD with gradient clipping from a poor initialisation (all zeros,
//     or N(0, 0.1^2) weights), with and without gradient noise of variance eta / (1 + t)^0.55, over a few seeds.
//     From zeros every hidden unit is dead and no gradient reaches the hidden layers; only noise can move them, so
//     the paper reports chance accuracy without noise and a working network with it (MNIST: 11.4% -> 94.5% best).
//
//   optim_study                               # both parts, about 3 minutes
//   optim_study --part deep --seeds 10 --out out/optim
//   optim_study --part optimizers --lr 1e-2   # a higher learning rate, where spikes are more common
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "data/sampling.h"
#include "recipes/common/harness.h"
#include "recipes/common/metrics.h"
#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;

namespace {

struct Config {
  std::string part = "both";  // optimizers, deep or both
  // part 1
  int64_t lm_steps = 600, hidden = 128, embed = 32, batch = 32, seq = 64;
  double lr = 3e-3, clip = 5.0, noise_eta = 0.01;
  int64_t spike_window = 50;
  // part 2
  // The paper's SGD lr 0.1 and clip 10. Measured here (5 seeds, 10,000 steps, zero init): eta 0.03 wakes every run
  // after 3,000-4,000 steps (mean 96%); 0.02 and 0.05 also rescue it (85%, 72%); the paper's 0.01 moves the weights
  // too little to wake them within 10,000 steps, and 0.1 wakes them at once but then kills them again (chance by
  // step 6,000). Smaller SGD rates (0.03, 0.01) never woke within 10,000 steps at any of those etas.
  int64_t depth = 20, width = 50, deep_steps = 10000, deep_batch = 32, seeds = 5;
  double deep_lr = 0.1, deep_clip = 10.0, deep_eta = 0.03;
  std::string init = "zero";  // zero, simple or both
};

// ------------------------------------------------------------------------------------------ loss spikes

// Counts the steps whose loss is above `factor` times the median of the previous `window` losses.
class SpikeCounter {
 public:
  explicit SpikeCounter(int64_t window, double factor = 2.0) : window_(window), factor_(factor) {}
  bool add(double loss) {
    bool spike = false;
    if (static_cast<int64_t>(recent_.size()) >= std::min<int64_t>(window_, 10)) {
      std::vector<double> v(recent_.begin(), recent_.end());
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      spike = loss > factor_ * v[v.size() / 2];
    }
    recent_.push_back(loss);
    if (static_cast<int64_t>(recent_.size()) > window_) recent_.erase(recent_.begin());
    spikes_ += spike;
    return spike;
  }
  int64_t spikes() const { return spikes_; }

 private:
  int64_t window_;
  double factor_;
  std::vector<double> recent_;
  int64_t spikes_ = 0;
};

// ------------------------------------------------------------------------------------------ part 1: optimizers

class CharLSTM : public tg::nn::Module {
 public:
  CharLSTM(const Config& cfg, int64_t vocab) {
    embed = register_module("embed", std::make_shared<tg::nn::Embedding>(vocab, cfg.embed));
    lstm = register_module("lstm", std::make_shared<tg::nn::LSTM>(tg::nn::RNNOptions{
                                       .input_size = cfg.embed, .hidden_size = cfg.hidden, .batch_first = true}));
    head = register_module("head", std::make_shared<tg::nn::Linear>(cfg.hidden, vocab));
  }
  // Logits [B * T, vocab]; the state is not carried (every window starts afresh).
  Tensor forward(const Tensor& x) {
    auto [y, h, c] = lstm->run(embed->forward(x), {}, {}, {});
    return head->forward(y.reshape({-1, y.size(-1)}));
  }
  std::shared_ptr<tg::nn::Embedding> embed;
  std::shared_ptr<tg::nn::LSTM> lstm;
  std::shared_ptr<tg::nn::Linear> head;
};

struct LmResult {
  std::string name;
  double final_loss = 0, val_loss = 0;
  int64_t spikes = 0;
};

// Validation loss over (up to) the first 64k characters of the validation split, 32 windows at a time.
double validation_loss(CharLSTM& model, const std::vector<int64_t>& split_val, int64_t seq) {
  tg::NoGradGuard no_grad;
  std::vector<int64_t> val(split_val.begin(), split_val.begin() + std::min<size_t>(split_val.size(), 65536));
  tg::data::LMLaneStream vs(val, {.batch_size = 32, .seq_len = seq});
  double sum = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < vs.batches_per_epoch(); ++k) {
    const tg::data::Batch b = vs.next();
    sum += F::cross_entropy(model.forward(b.input), b.target.reshape({-1}), -100, 0.0, "sum").item<double>();
    count += b.target.numel();
  }
  return sum / static_cast<double>(std::max<int64_t>(1, count));
}

LmResult train_lm(const std::string& name, const Config& cfg, int64_t steps, int64_t eval_every,
                  const tg::data::Split& split, int64_t vocab, uint64_t seed, const std::string& metrics_path) {
  tg::manual_seed(seed);  // the same initialisation for every optimizer
  CharLSTM model(cfg, vocab);
  std::unique_ptr<tg::optim::Optimizer> opt;
  const std::vector<Tensor> params = model.parameters();
  const tg::optim::AdamOptions adam{.lr = cfg.lr};
  if (name == "adam" || name == "adam+noise") opt = std::make_unique<tg::optim::Adam>(params, adam);
  if (name == "adamw") opt = std::make_unique<tg::optim::AdamW>(params, adam);
  if (name == "spam") opt = std::make_unique<tg::optim::SPAM>(params, tg::optim::SPAMOptions{.lr = cfg.lr});
  tg::optim::GradientNoise noise(cfg.noise_eta, 0.55, seed + 1);
  tg::data::LMWindowStream stream(split.train, {.batch_size = cfg.batch, .seq_len = cfg.seq, .seed = seed});
  tg::recipes::MetricsWriter metrics;
  if (!metrics_path.empty()) metrics = tg::recipes::MetricsWriter(metrics_path);
  SpikeCounter spikes(cfg.spike_window);
  double tail_sum = 0, log_sum = 0;
  int64_t tail_n = 0;
  const int64_t tail_from = steps - std::max<int64_t>(1, steps / 10);  // "final": the mean of the last 10%
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t step = 1; step <= steps; ++step) {
    const tg::data::Batch b = stream.next();
    Tensor loss = F::cross_entropy(model.forward(b.input), b.target.reshape({-1}));
    opt->zero_grad();
    loss.backward();
    tg::optim::clip_grad_norm_(opt->parameters(), cfg.clip);
    if (name == "adam+noise") noise.apply(*opt);  // after clipping, so the clip does not shrink the noise
    opt->step();
    const double l = loss.item<double>();
    TG_CHECK(std::isfinite(l), "{}: the loss is {} at step {}: try a lower --lr", name, l, step);
    const bool spike = spikes.add(l);
    log_sum += l;
    if (step > tail_from) {
      tail_sum += l;
      ++tail_n;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (spike) metrics.write(step, {{"spike_loss", l}}, wall);
    if (step % 10 == 0) {
      metrics.write(step, {{"loss", log_sum / 10}, {"lr", cfg.lr}}, wall);
      log_sum = 0;
    }
    if (step % eval_every == 0 && step < steps)
      metrics.write(step, {{"val_loss", validation_loss(model, split.val, cfg.seq)}}, wall);
  }
  const double val_loss = validation_loss(model, split.val, cfg.seq);
  metrics.write(steps, {{"val_loss", val_loss}},
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return {name, tail_sum / static_cast<double>(tail_n), val_loss, spikes.spikes()};
}

void optimizers_part(tg::recipes::Harness& h, const Config& cfg, std::ofstream& results) {
  const auto& f = h.flags();
  const std::string path = f.data.empty() ? std::string(TG_CORPUS_DIR) + "/tinyshakespeare.txt" : f.data;
  const std::string text = tg::data::read_text_file(path);
  const auto tok = tg::data::CharTokenizer::build(text);
  const tg::data::Split split = tg::data::split_tokens(tok.encode(text), 0.1);
  const int64_t steps = f.steps > 0 ? f.steps : cfg.lm_steps;
  fmt::print("== part 1: optimizers | {}: 1-layer LSTM {} on {} characters, {} steps of {} x {}, lr {:.1e}, clip {}\n",
             path, cfg.hidden, tok.vocab_size(), steps, cfg.batch, cfg.seq, cfg.lr, cfg.clip);
  fmt::print("   {:<11} | {:>10} | {:>8} | {:>6}\n", "optimizer", "final loss", "val loss", "spikes");
  std::fflush(stdout);
  for (const std::string name : {"adam", "adamw", "spam", "adam+noise"}) {
    const int64_t eval_every = f.eval_every > 0 ? f.eval_every : 100;
    const std::string folder = name == "adam+noise" ? "adam_noise" : name;
    const LmResult r = train_lm(name, cfg, steps, eval_every, split, tok.vocab_size(), f.seed,
                                h.out_path(folder + "/metrics.jsonl"));
    fmt::print("   {:<11} | {:>10.4f} | {:>8.4f} | {:>6}\n", r.name, r.final_loss, r.val_loss, r.spikes);
    std::fflush(stdout);
    if (results.is_open())
      results << fmt::format("{{\"part\": \"optimizers\", \"optimizer\": \"{}\", \"steps\": {}, \"final_loss\": {}, "
                             "\"val_loss\": {}, \"spikes\": {}}}\n", r.name, steps, r.final_loss, r.val_loss, r.spikes);
  }
}

// ------------------------------------------------------------------------------------------ part 2: deep MLP

struct Digits {
  Tensor train_x, train_y, test_x, test_y;
};

// digits.csv: 64 pixel values (0..16) then the label per row. A seeded 80/20 split; pixels scaled to [0, 1].
Digits load_digits(const std::string& path, uint64_t seed) {
  std::istringstream in(tg::data::read_text_file(path));
  std::vector<float> x;
  std::vector<int64_t> y;
  std::string line;
  int64_t row = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++row;
    std::vector<double> v;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) {
      try {
        v.push_back(std::stod(cell));
      } catch (const std::exception&) {
        TG_ERROR("{}: line {}: '{}' is not a number", path, row, cell);
      }
    }
    TG_CHECK(v.size() == 65 && v[64] >= 0 && v[64] <= 9, "{}: line {}: expected 64 pixels and a label 0..9, got {} "
             "values", path, row, v.size());
    for (int i = 0; i < 64; ++i) x.push_back(static_cast<float>(v[i] / 16.0));
    y.push_back(static_cast<int64_t>(v[64]));
  }
  TG_CHECK(row >= 10, "{}: only {} rows", path, row);
  const Tensor X = tg::tensor<float>(x, {row, 64}), Y = tg::tensor<int64_t>(y, {row});
  tg::Generator gen(seed);
  std::vector<int64_t> order(static_cast<size_t>(row));
  for (int64_t i = 0; i < row; ++i) order[i] = i;
  tg::data::shuffle(order, gen);
  const int64_t n_test = row / 5;
  const Tensor test_idx = tg::tensor<int64_t>(std::vector<int64_t>(order.begin(), order.begin() + n_test), {n_test});
  const Tensor train_idx =
      tg::tensor<int64_t>(std::vector<int64_t>(order.begin() + n_test, order.end()), {row - n_test});
  return {X.index_select(0, train_idx), Y.index_select(0, train_idx), X.index_select(0, test_idx),
          Y.index_select(0, test_idx)};
}

std::shared_ptr<tg::nn::Sequential> deep_mlp(const Config& cfg, const std::string& init) {
  auto mlp = std::make_shared<tg::nn::Sequential>();
  int64_t in = 64;
  for (int64_t l = 0; l < cfg.depth; ++l) {
    mlp->push_back(std::make_shared<tg::nn::Linear>(in, cfg.width));
    mlp->push_back(std::make_shared<tg::nn::ReLU>());
    in = cfg.width;
  }
  mlp->push_back(std::make_shared<tg::nn::Linear>(in, 10));
  // The paper's poor initialisations: "bad" all zeros, "simple" N(0, 0.1^2) weights; biases zero in both.
  for (auto& [name, p] : mlp->named_parameters()) {
    if (init == "simple" && name.ends_with("weight")) tg::nn::init::normal_(p, 0.0, 0.1);
    else tg::nn::init::zeros_(p);
  }
  return mlp;
}

double accuracy(tg::nn::Sequential& mlp, const Tensor& x, const Tensor& y) {
  tg::NoGradGuard no_grad;
  const Tensor pred = tg::argmax(mlp.forward(x), 1);
  return tg::eq(pred, y).to(tg::kFloat64).mean().item<double>();
}

struct DeepResult {
  double test_acc, train_loss;
};

DeepResult train_deep(const Config& cfg, const Digits& d, const std::string& init, bool noisy, uint64_t seed,
                      int64_t steps, const std::string& metrics_path) {
  tg::manual_seed(seed);
  auto mlp = deep_mlp(cfg, init);
  tg::optim::SGD opt(mlp->parameters(), {.lr = cfg.deep_lr});
  tg::optim::GradientNoise noise(cfg.deep_eta, 0.55, seed + 1);
  tg::Generator gen(seed + 2);
  tg::recipes::MetricsWriter metrics;
  if (!metrics_path.empty()) metrics = tg::recipes::MetricsWriter(metrics_path);
  const int64_t n = d.train_x.size(0);
  double log_sum = 0, tail = 0;
  int64_t tail_n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto wall = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<int64_t> idx(static_cast<size_t>(cfg.deep_batch));
    for (auto& i : idx) i = tg::data::uniform_int(gen, n);
    const Tensor rows = tg::tensor<int64_t>(idx, {cfg.deep_batch});
    Tensor loss = F::cross_entropy(mlp->forward(d.train_x.index_select(0, rows)), d.train_y.index_select(0, rows));
    opt.zero_grad();
    loss.backward();
    tg::optim::clip_grad_norm_(opt.parameters(), cfg.deep_clip);
    if (noisy) noise.apply(opt);  // after the clip, which bounds the gradient, not the noise (as in part 1)
    opt.step();
    const double l = loss.item<double>();
    log_sum += l;
    if (step > steps - std::max<int64_t>(1, steps / 10)) {
      tail += l;
      ++tail_n;
    }
    if (step % 50 == 0) {
      metrics.write(step, {{"loss", log_sum / 50}, {"lr", cfg.deep_lr}}, wall());
      log_sum = 0;
    }
    if (step % 500 == 0 || step == steps)
      metrics.write(step, {{"accuracy", accuracy(*mlp, d.test_x, d.test_y)}}, wall());
  }
  return {accuracy(*mlp, d.test_x, d.test_y), tail / static_cast<double>(tail_n)};
}

void deep_part(tg::recipes::Harness& h, const Config& cfg, std::ofstream& results) {
  const auto& f = h.flags();
  const std::string path = f.data.empty() || cfg.part == "both" ? std::string(TG_CORPUS_DIR) + "/digits/digits.csv"
                                                                 : f.data;
  const Digits d = load_digits(path, f.seed);
  const int64_t steps = f.steps > 0 ? f.steps : cfg.deep_steps;
  fmt::print("== part 2: deep network | {}: {} train / {} test images | {} x {} ReLU MLP, SGD lr {}, clip {}, "
             "batch {}, {} steps | noise eta {}, gamma 0.55 | {} seeds\n", path, d.train_x.size(0), d.test_x.size(0),
             cfg.depth, cfg.width, cfg.deep_lr, cfg.deep_clip, cfg.deep_batch, steps, cfg.deep_eta, cfg.seeds);
  fmt::print("   {:<6} | {:<5} | {:>14} | {:>14} | {:>10}\n", "init", "noise", "best test acc", "mean test acc",
             "train loss");
  std::fflush(stdout);
  std::vector<std::string> inits = cfg.init == "both" ? std::vector<std::string>{"zero", "simple"}
                                                      : std::vector<std::string>{cfg.init};
  for (const std::string& init : inits)
    for (bool noisy : {false, true}) {
      double best = 0, sum = 0, loss = 0;
      for (int64_t s = 0; s < cfg.seeds; ++s) {
        const std::string run = fmt::format("deep_{}_{}_s{}", init, noisy ? "noise" : "plain", s);
        const DeepResult r = train_deep(cfg, d, init, noisy, f.seed + 1000 * static_cast<uint64_t>(s), steps,
                                        h.out_path(run + "/metrics.jsonl"));
        best = std::max(best, r.test_acc);
        sum += r.test_acc;
        loss += r.train_loss;
        if (results.is_open())
          results << fmt::format("{{\"part\": \"deep\", \"init\": \"{}\", \"noise\": {}, \"seed\": {}, \"steps\": {}, "
                                 "\"test_accuracy\": {}, \"train_loss\": {}}}\n", init, noisy, s, steps, r.test_acc,
                                 r.train_loss);
      }
      fmt::print("   {:<6} | {:<5} | {:>13.1f}% | {:>13.1f}% | {:>10.4f}\n", init, noisy ? "yes" : "no", 100 * best,
                 100 * sum / cfg.seeds, loss / cfg.seeds);
      std::fflush(stdout);
    }
}

void run(tg::recipes::Harness& h, const Config& cfg) {
  const auto& f = h.flags();
  TG_CHECK(f.data.empty() || cfg.part != "both", "--data {}: say which part it is for (--part optimizers takes a "
           "text file, --part deep a digits-style CSV)", f.data);
  TG_CHECK(f.resume.empty() && !f.save && !f.bench, "optim_study makes short runs from scratch: --resume, --save "
           "and --bench are not supported");
  if (!h.out_dir().empty())
    for (const char* run : {"adam", "adamw", "spam", "adam_noise"})
      std::filesystem::create_directories(h.out_path(run));
  if (!h.out_dir().empty() && cfg.part != "optimizers")
    for (const char* init : {"zero", "simple"})
      for (const char* kind : {"plain", "noise"})
        for (int64_t s = 0; s < cfg.seeds; ++s)
          std::filesystem::create_directories(h.out_path(fmt::format("deep_{}_{}_s{}", init, kind, s)));
  std::ofstream results;
  if (!h.out_dir().empty()) results.open(h.out_path("results.jsonl"));
  if (cfg.part != "deep") optimizers_part(h, cfg, results);
  if (cfg.part != "optimizers") deep_part(h, cfg, results);
  if (results.is_open()) fmt::print("wrote {}\n", h.out_path("results.jsonl"));
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::Harness h("optim_study", "optim_study: Adam, AdamW, SPAM and gradient noise on a small LSTM; "
                         "gradient noise on a 20-layer MLP from a poor initialisation");
  Config cfg;
  CLI::App& app = h.app();
  app.add_option("--part", cfg.part, "which experiment")->check(CLI::IsMember({"optimizers", "deep", "both"}));
  app.add_option("--lm-steps", cfg.lm_steps, "part 1: steps per optimizer (--steps overrides both parts)")
      ->check(CLI::PositiveNumber);
  app.add_option("--hidden", cfg.hidden, "part 1: LSTM hidden units")->check(CLI::PositiveNumber);
  app.add_option("--batch", cfg.batch, "part 1: windows per step")->check(CLI::PositiveNumber);
  app.add_option("--seq", cfg.seq, "part 1: characters per window")->check(CLI::PositiveNumber);
  app.add_option("--lr", cfg.lr, "part 1: learning rate of every optimizer")->check(CLI::PositiveNumber);
  app.add_option("--clip", cfg.clip, "part 1: gradient-norm clipping threshold")->check(CLI::PositiveNumber);
  app.add_option("--noise-eta", cfg.noise_eta, "part 1: gradient-noise eta for adam+noise")->check(CLI::PositiveNumber);
  app.add_option("--spike-window", cfg.spike_window, "part 1: steps in the running median")
      ->check(CLI::Range(10, 100000));
  app.add_option("--depth", cfg.depth, "part 2: hidden layers")->check(CLI::PositiveNumber);
  app.add_option("--width", cfg.width, "part 2: units per hidden layer")->check(CLI::PositiveNumber);
  app.add_option("--deep-steps", cfg.deep_steps, "part 2: SGD steps per run")->check(CLI::PositiveNumber);
  app.add_option("--deep-lr", cfg.deep_lr, "part 2: SGD learning rate")->check(CLI::PositiveNumber);
  app.add_option("--deep-clip", cfg.deep_clip, "part 2: gradient-norm clipping threshold")->check(CLI::PositiveNumber);
  app.add_option("--deep-eta", cfg.deep_eta, "part 2: gradient-noise eta")->check(CLI::PositiveNumber);
  app.add_option("--seeds", cfg.seeds, "part 2: runs per setting")->check(CLI::PositiveNumber);
  app.add_option("--init", cfg.init, "part 2: the poor initialisation")
      ->check(CLI::IsMember({"zero", "simple", "both"}));
  return h.main(argc, argv, [&] { run(h, cfg); });
}
