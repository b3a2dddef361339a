// s4: an S4D classifier (Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State Space
// Models"; the reference example.py of state-spaces/s4) on two long-range tasks scaled down to a CPU:
//   --task digits   sequential digits: the 8x8 UCI digits (data/corpora/digits) read pixel by pixel, 64 steps
//                   (the small sibling of sequential MNIST's 784), 10 classes
//   --task listops  ListOps (Nangia & Bowman 2018, as in the Long Range Arena) from data/synthetic.h, short
//                   expressions (--min-len, --max-len), 10 classes
// Encoder (Linear for pixels, Embedding for tokens) -> --layers residual (x + S4D(LayerNorm(x))) -> mean over the
// valid positions -> Linear. Adam; accuracy on held-out data every --eval-every steps.
//
//   s4                                   # sequential digits, defaults
//   s4 --task listops --steps 600 --out out/listops
//   s4 --bench
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "recipes/common/harness.h"
#include "recipes/common/metrics.h"
#include "recipes/common/progress.h"
#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;

namespace {

struct Config {
  std::string task = "digits";
  int64_t layers = 2, width = 64, d_state = 32, batch = 32;
  double lr = 4e-3;
  int64_t min_len = 20, max_len = 80;  // listops
  bool bidirectional = false;
};

class Residual : public tg::nn::UnaryModule {
 public:
  Residual(const Config& c) {
    norm = register_module("norm", std::make_shared<tg::nn::LayerNorm>(tg::Shape{c.width}));
    s4d = register_module("s4d", std::make_shared<tg::nn::S4D>(tg::nn::S4DOptions{
                                     .d_model = c.width, .d_state = c.d_state, .bidirectional = c.bidirectional}));
  }
  Tensor forward(const Tensor& x) override { return x + s4d->forward(norm->forward(x)); }
  std::shared_ptr<tg::nn::LayerNorm> norm;
  std::shared_ptr<tg::nn::S4D> s4d;
};

class Classifier : public tg::nn::Module {
 public:
  explicit Classifier(const Config& c) : tokens(c.task == "listops") {
    if (tokens) embed = register_module("encoder", std::make_shared<tg::nn::Embedding>(tg::data::ListOpsVocab::kSize, c.width));
    else pixel = register_module("encoder", std::make_shared<tg::nn::Linear>(1, c.width));
    layers = register_module("layers", std::make_shared<tg::nn::ModuleList>());
    for (int64_t i = 0; i < c.layers; ++i) layers->push_back(std::make_shared<Residual>(c));
    decoder = register_module("decoder", std::make_shared<tg::nn::Linear>(c.width, 10));
  }
  // input [B, L] (token ids, or pixels as floats), mask [B, L] float (1 at valid positions) -> logits [B, 10].
  Tensor forward(const Tensor& input, const Tensor& mask) {
    Tensor h = tokens ? embed->forward(input) : pixel->forward(input.unsqueeze(2));
    for (size_t i = 0; i < layers->size(); ++i) h = layers->at<Residual>(i)->forward(h);
    Tensor m = mask.unsqueeze(2);
    return decoder->forward(tg::sum(h * m, {1}) / tg::sum(m, {1}));
  }
  bool tokens;
  std::shared_ptr<tg::nn::Embedding> embed;
  std::shared_ptr<tg::nn::Linear> pixel;
  std::shared_ptr<tg::nn::ModuleList> layers;
  std::shared_ptr<tg::nn::Linear> decoder;
};

struct Example {
  Tensor input, mask, label;
};

// The digits as [1797, 64] pixels scaled to [0, 1] and their labels; the last 297 rows are held out.
struct Digits {
  std::vector<float> pixels;
  std::vector<int64_t> labels;
};

Digits load_digits(const std::string& path) {
  std::ifstream f(path);
  TG_CHECK(f.good(), "s4: cannot read {} (no such file?)", path);
  Digits d;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    std::vector<double> row;
    while (std::getline(ss, cell, ',')) row.push_back(std::stod(cell));
    TG_CHECK(row.size() == 65, "s4: {}: a row of {} values, expected 64 pixels and a label", path, row.size());
    for (int i = 0; i < 64; ++i) d.pixels.push_back(static_cast<float>(row[i] / 16.0));
    d.labels.push_back(static_cast<int64_t>(row[64]));
  }
  return d;
}

Example digits_batch(const Digits& d, const std::vector<int64_t>& rows) {
  std::vector<float> px;
  std::vector<int64_t> lab;
  for (int64_t r : rows) {
    px.insert(px.end(), d.pixels.begin() + r * 64, d.pixels.begin() + (r + 1) * 64);
    lab.push_back(d.labels[r]);
  }
  const int64_t B = static_cast<int64_t>(rows.size());
  return {tg::tensor(px, {B, 64}), tg::ones({B, 64}), tg::tensor(lab, {B})};
}

Example listops_batch(const Config& c, int64_t batch, tg::Generator& g) {
  tg::data::Batch b = tg::data::listops({.max_depth = 4, .max_args = 5, .min_length = c.min_len,
                                         .max_length = c.max_len}, batch, g);
  const int64_t L = b.input.size(1);
  Tensor mask = tg::lt(tg::arange(static_cast<double>(L)).reshape({1, L}), b.input_lengths.reshape({-1, 1}))
                    .to(tg::kFloat32);
  return {b.input, mask, b.target};
}

void run(tg::recipes::Harness& h, const Config& c) {
  const auto& f = h.flags();
  tg::manual_seed(f.seed);
  Classifier model(c);
  tg::optim::Adam opt(model.parameters(), {.lr = c.lr});
  tg::Generator gen(f.seed + 1);
  Digits digits;
  std::vector<int64_t> train_rows, test_rows;
  if (c.task == "digits") {
    digits = load_digits(f.data.empty() ? std::string(TG_CORPUS_DIR) + "/digits/digits.csv" : f.data);
    const int64_t n = static_cast<int64_t>(digits.labels.size()), n_test = std::min<int64_t>(297, n / 5);
    for (int64_t i = 0; i < n; ++i) (i < n - n_test ? train_rows : test_rows).push_back(i);
  }
  auto train_batch = [&] {
    if (c.task == "listops") return listops_batch(c, c.batch, gen);
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < c.batch; ++i)
      rows.push_back(train_rows[tg::data::uniform_int(gen, static_cast<int64_t>(train_rows.size()))]);
    return digits_batch(digits, rows);
  };
  std::vector<Example> eval_set;
  if (c.task == "listops") {
    tg::Generator eg(f.seed + 1000);
    for (int i = 0; i < 4; ++i) eval_set.push_back(listops_batch(c, 64, eg));
  } else {
    for (size_t i = 0; i < test_rows.size(); i += 100)
      eval_set.push_back(digits_batch(
          digits, std::vector<int64_t>(test_rows.begin() + i, test_rows.begin() + std::min(test_rows.size(), i + 100))));
  }
  auto step_on = [&](const Example& e) {
    Tensor loss = F::cross_entropy(model.forward(e.input, e.mask), e.label);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss.item<double>();
  };
  if (f.bench) {
    Example e = train_batch();
    tg::recipes::run_bench("s4", f.steps ? f.steps : 10, 2, static_cast<double>(e.input.numel()), [&] { step_on(e); });
    return;
  }
  auto evaluate = [&] {
    tg::NoGradGuard g;
    double hit = 0, n = 0;
    for (auto& e : eval_set) {
      Tensor pred = tg::argmax(model.forward(e.input, e.mask), 1);
      hit += tg::sum(tg::eq(pred, e.label).to(tg::kFloat64)).item<double>();
      n += static_cast<double>(e.label.numel());
    }
    return hit / n;
  };
  const int64_t steps = f.steps ? f.steps : 800, eval_every = f.eval_every ? f.eval_every : 100;
  std::printf("s4: task %s, %lld S4D layers of width %lld (d_state %lld), %lld parameters\n", c.task.c_str(),
              static_cast<long long>(c.layers), static_cast<long long>(c.width), static_cast<long long>(c.d_state),
              static_cast<long long>(model.num_parameters()));
  tg::recipes::MetricsWriter metrics;
  if (!h.out_dir().empty()) metrics = tg::recipes::MetricsWriter(h.out_path("metrics.jsonl"));
  tg::recipes::Progress progress(steps, f.minutes * 60, f.log_every);
  progress.start(0);
  double acc = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    if (f.minutes > 0 && progress.elapsed() > f.minutes * 60) break;
    Example e = train_batch();
    const double loss = step_on(e);
    progress.update(step, loss, c.lr, e.input.numel());
    metrics.write(step, {{"loss", loss}}, progress.elapsed());
    if (step % eval_every == 0 || step == steps) {
      acc = evaluate();
      progress.message(fmt::format("step {:>5} | loss {:.4f} | test accuracy {:.1f}%", step, loss, 100 * acc));
      metrics.write(step, {{"accuracy", acc}}, progress.elapsed());
    }
    if (tg::recipes::Harness::interrupted()) break;
  }
  progress.finish();
  std::printf("final: %s test accuracy %.1f%%\n", c.task.c_str(), 100 * acc);
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::Harness h("s4", "s4: an S4D classifier on sequential digits and ListOps");
  Config c;
  CLI::App& app = h.app();
  app.add_option("--task", c.task, "task")->check(CLI::IsMember({"digits", "listops"}));
  app.add_option("--layers", c.layers, "S4D layers")->check(CLI::PositiveNumber);
  app.add_option("--width", c.width, "model width (channels)")->check(CLI::PositiveNumber);
  app.add_option("--d-state", c.d_state, "S4D state size N (N / 2 complex modes; even)")->check(CLI::PositiveNumber);
  app.add_option("--batch", c.batch, "examples per batch")->check(CLI::PositiveNumber);
  app.add_option("--lr", c.lr, "learning rate (Adam)")->check(CLI::PositiveNumber);
  app.add_option("--min-len", c.min_len, "listops: shortest expression (tokens)")->check(CLI::PositiveNumber);
  app.add_option("--max-len", c.max_len, "listops: longest expression (tokens)")->check(CLI::PositiveNumber);
  app.add_flag("--bidirectional", c.bidirectional, "bidirectional S4D layers (a classifier sees the whole input)");
  return h.main(argc, argv, [&] { run(h, c); });
}
