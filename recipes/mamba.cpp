// mamba: Mamba (Gu and Dao 2023) on the synthetic tasks of its section 3.1 / 4.1, scaled down to a CPU, beside the
// time-invariant S4D for the comparison of its Table 1 (selective copying: S4 18.3%, Mamba 99.8% there), and
// (--task shakespeare) a character-level MambaLM on Tiny Shakespeare, sampled at the end with the step API.
// A residual stack of (RMSNorm -> mixer) layers between an embedding and a linear head, trained with Adam on fresh
// batches from data/synthetic.h; accuracy counts the scored tokens (the copied tokens, or the induction answer).
//
//   mamba                                      # selective copying with Mamba, the defaults below
//   mamba --model s4d --out out/s4d            # the same task with S4D layers
//   mamba --task induction --steps 400
//   mamba --task shakespeare --steps 600 --width 128 --seq 128
//   mamba --bench                              # one JSON line: tokens/s, ms/step, peak memory
#include <cstdio>
#include <memory>
#include <string>

#include "recipes/common/harness.h"
#include "recipes/common/metrics.h"
#include "recipes/common/progress.h"
#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;

namespace {

struct Config {
  std::string task = "selective-copy", model = "mamba";
  int64_t layers = 2, width = 64, d_state = 16;
  int64_t vocab = 16, tokens = 8, seq = 64;  // selective copying: `tokens` data tokens among `seq` positions
  int64_t batch = 32;
  double lr = 3e-3;
  int64_t eval_batches = 4;
};

// x + mixer(norm(x)) with either mixer.
class Residual : public tg::nn::UnaryModule {
 public:
  Residual(std::shared_ptr<tg::nn::UnaryModule> m, int64_t width) {
    norm = register_module("norm", std::make_shared<tg::nn::RMSNorm>(tg::Shape{width}, 1e-5));
    mixer = register_module("mixer", std::move(m));
  }
  Tensor forward(const Tensor& x) override { return x + mixer->forward(norm->forward(x)); }
  std::shared_ptr<tg::nn::UnaryModule> norm, mixer;
};

class Model : public tg::nn::Module {
 public:
  explicit Model(const Config& c) {
    emb = register_module("embedding", std::make_shared<tg::nn::Embedding>(c.vocab, c.width));
    layers = register_module("layers", std::make_shared<tg::nn::ModuleList>());
    for (int64_t i = 0; i < c.layers; ++i) {
      std::shared_ptr<tg::nn::UnaryModule> m;
      if (c.model == "mamba") m = std::make_shared<tg::nn::Mamba>(tg::nn::MambaOptions{.d_model = c.width, .d_state = c.d_state});
      else m = std::make_shared<tg::nn::S4D>(tg::nn::S4DOptions{.d_model = c.width, .d_state = 2 * c.d_state});
      layers->push_back(std::make_shared<Residual>(m, c.width));
    }
    norm_f = register_module("norm_f", std::make_shared<tg::nn::RMSNorm>(tg::Shape{c.width}, 1e-5));
    head = register_module("head", std::make_shared<tg::nn::Linear>(c.width, c.vocab));
  }
  Tensor forward(const Tensor& tokens) {
    Tensor h = emb->forward(tokens);
    for (size_t i = 0; i < layers->size(); ++i) h = layers->at<Residual>(i)->forward(h);
    return head->forward(norm_f->forward(h));
  }
  std::shared_ptr<tg::nn::Embedding> emb;
  std::shared_ptr<tg::nn::ModuleList> layers;
  std::shared_ptr<tg::nn::RMSNorm> norm_f;
  std::shared_ptr<tg::nn::Linear> head;
};

tg::data::Batch draw(const Config& c, tg::Generator& g) {
  if (c.task == "induction") return tg::data::induction_heads({.vocab_size = c.vocab, .seq_len = c.seq}, c.batch, g);
  return tg::data::selective_copying({.vocab_size = c.vocab, .num_tokens = c.tokens, .seq_len = c.seq}, c.batch, g);
}

// Loss over the scored positions and the fraction of them predicted exactly.
std::pair<Tensor, double> loss_and_accuracy(Model& m, const tg::data::Batch& b, int64_t vocab) {
  Tensor logits = m.forward(b.input).reshape({-1, vocab});
  Tensor target = b.target.reshape({-1});
  Tensor loss = F::cross_entropy(logits, target);
  tg::NoGradGuard g;
  Tensor scored = tg::ne(target, tg::data::kIgnore);
  Tensor hit = tg::logical_and(tg::eq(tg::argmax(logits, 1), target), scored);
  const double n = tg::sum(scored.to(tg::kFloat64)).item<double>();
  return {loss, n > 0 ? tg::sum(hit.to(tg::kFloat64)).item<double>() / n : 0.0};
}

// Draws next with probability softmax(logits / temperature).
int64_t draw_token(const Tensor& logits, double temperature, tg::Generator& g) {
  std::vector<float> p = tg::softmax(logits / temperature, 0).to_vector<float>();
  double u = g.uniform();
  for (size_t j = 0; j < p.size(); ++j)
    if ((u -= p[j]) < 0) return static_cast<int64_t>(j);
  return static_cast<int64_t>(p.size()) - 1;
}

// --task shakespeare: MambaLM (RMSNorm, tied head) on random windows of Tiny Shakespeare; validation loss on a
// fixed set of held-out windows (the last 10%); a sample generated token by token with MambaLM::step.
void run_lm(tg::recipes::Harness& h, const Config& c) {
  const auto& f = h.flags();
  tg::manual_seed(f.seed);
  const std::string text = tg::data::read_text_file(f.data.empty() ? std::string(TG_CORPUS_DIR) + "/tinyshakespeare.txt"
                                                                    : f.data);
  auto tok = tg::data::CharTokenizer::build(text);
  const std::vector<int64_t> ids = tok.encode(text);
  const int64_t n = static_cast<int64_t>(ids.size()), n_train = n * 9 / 10, V = tok.vocab_size(), T = c.seq;
  TG_CHECK(n - n_train > T + 1, "mamba: the corpus ({} characters) is too short for --seq {}", n, T);
  tg::nn::MambaLM model({.vocab_size = V, .d_model = c.width, .n_layer = c.layers, .d_state = c.d_state});
  tg::optim::Adam opt(model.parameters(), {.lr = c.lr});
  tg::Generator gen(f.seed + 1);
  auto windows = [&](int64_t B, int64_t lo, int64_t hi, tg::Generator& g) {  // B windows of T + 1 in [lo, hi)
    std::vector<int64_t> x, y;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t s = lo + tg::data::uniform_int(g, hi - lo - T - 1);
      x.insert(x.end(), ids.begin() + s, ids.begin() + s + T);
      y.insert(y.end(), ids.begin() + s + 1, ids.begin() + s + T + 1);
    }
    return std::pair{tg::tensor(x, {B, T}), tg::tensor(y, {B, T})};
  };
  auto lm_loss = [&](const Tensor& x, const Tensor& y) {
    return F::cross_entropy(model.forward(x).reshape({-1, V}), y.reshape({-1}));
  };
  if (f.bench) {
    auto [x, y] = windows(c.batch, 0, n_train, gen);
    tg::recipes::run_bench("mamba", f.steps ? f.steps : 10, 2, static_cast<double>(x.numel()), [&] {
      Tensor loss = lm_loss(x, y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    });
    return;
  }
  tg::Generator vgen(f.seed + 1000);
  std::vector<std::pair<Tensor, Tensor>> val;
  for (int i = 0; i < 4; ++i) val.push_back(windows(c.batch, n_train, n, vgen));
  auto evaluate = [&] {
    tg::NoGradGuard g;
    double s = 0;
    for (auto& [x, y] : val) s += lm_loss(x, y).item<double>();
    return s / static_cast<double>(val.size());
  };
  const int64_t steps = f.steps ? f.steps : 1000, eval_every = f.eval_every ? f.eval_every : 100;
  std::printf("mamba: Tiny Shakespeare, MambaLM %lld layers of width %lld, %lld parameters\n",
              static_cast<long long>(c.layers), static_cast<long long>(c.width),
              static_cast<long long>(model.num_parameters()));
  tg::recipes::MetricsWriter metrics;
  if (!h.out_dir().empty()) metrics = tg::recipes::MetricsWriter(h.out_path("metrics.jsonl"));
  tg::recipes::Progress progress(steps, f.minutes * 60, f.log_every);
  progress.start(0);
  double vl = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    if (f.minutes > 0 && progress.elapsed() > f.minutes * 60) break;
    auto [x, y] = windows(c.batch, 0, n_train, gen);
    Tensor loss = lm_loss(x, y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    const double l = loss.item<double>();
    progress.update(step, l, c.lr, x.numel());
    metrics.write(step, {{"loss", l}}, progress.elapsed());
    if (step % eval_every == 0 || step == steps) {
      vl = evaluate();
      progress.message(fmt::format("step {:>5} | val loss {:.4f}", step, vl));
      metrics.write(step, {{"val_loss", vl}}, progress.elapsed());
    }
    if (tg::recipes::Harness::interrupted()) break;
  }
  progress.finish();
  // Generation: one token at a time through the recurrent state (no re-reading of the prefix).
  tg::NoGradGuard g;
  tg::Generator sgen(f.seed + 7);
  auto states = model.initial_state(1);
  int64_t next = tok.encode("\n")[0];
  std::string out;
  for (int i = 0; i < 300; ++i) {
    next = draw_token(model.step(tg::tensor<int64_t>({next}, {1}), states).reshape({-1}), 0.8, sgen);
    out += tok.token_text(next);
  }
  std::printf("---- sample (temperature 0.80) ----\n%s\n----\nfinal: val loss %.4f\n", out.c_str(), vl);
}

void run(tg::recipes::Harness& h, const Config& c) {
  if (c.task == "shakespeare") return run_lm(h, c);
  const auto& f = h.flags();
  tg::manual_seed(f.seed);
  Model model(c);
  tg::optim::Adam opt(model.parameters(), {.lr = c.lr});
  tg::Generator train_gen(f.seed + 1), eval_gen(f.seed + 1000);
  if (f.bench) {
    tg::data::Batch b = draw(c, train_gen);
    tg::recipes::run_bench("mamba", f.steps ? f.steps : 10, 2, static_cast<double>(b.input.numel()), [&] {
      auto [loss, acc] = loss_and_accuracy(model, b, c.vocab);
      opt.zero_grad();
      loss.backward();
      opt.step();
    });
    return;
  }
  std::vector<tg::data::Batch> eval_set;
  for (int64_t i = 0; i < c.eval_batches; ++i) eval_set.push_back(draw(c, eval_gen));
  auto evaluate = [&] {
    tg::NoGradGuard g;
    double acc = 0;
    for (auto& b : eval_set) acc += loss_and_accuracy(model, b, c.vocab).second;
    return acc / static_cast<double>(eval_set.size());
  };
  const int64_t steps = f.steps ? f.steps : 1000, eval_every = f.eval_every ? f.eval_every : 100;
  std::printf("mamba: task %s, model %s, %lld layers of width %lld, %lld parameters\n", c.task.c_str(),
              c.model.c_str(), static_cast<long long>(c.layers), static_cast<long long>(c.width),
              static_cast<long long>(model.num_parameters()));
  tg::recipes::MetricsWriter metrics;
  if (!h.out_dir().empty()) metrics = tg::recipes::MetricsWriter(h.out_path("metrics.jsonl"));
  tg::recipes::Progress progress(steps, f.minutes * 60, f.log_every);
  progress.start(0);
  double acc = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    if (f.minutes > 0 && progress.elapsed() > f.minutes * 60) break;
    tg::data::Batch b = draw(c, train_gen);
    auto [loss, train_acc] = loss_and_accuracy(model, b, c.vocab);
    opt.zero_grad();
    loss.backward();
    opt.step();
    const double l = loss.item<double>();
    progress.update(step, l, c.lr, b.input.numel());
    metrics.write(step, {{"loss", l}, {"train_accuracy", train_acc}}, progress.elapsed());
    if (step % eval_every == 0 || step == steps) {
      acc = evaluate();
      progress.message(fmt::format("step {:>5} | loss {:.4f} | eval accuracy {:.1f}%", step, l, 100 * acc));
      metrics.write(step, {{"accuracy", acc}}, progress.elapsed());  // the name recipes/plot.py reads
    }
    if (tg::recipes::Harness::interrupted()) break;
  }
  progress.finish();
  std::printf("final: %s eval accuracy %.1f%% (%s)\n", c.model.c_str(), 100 * acc, c.task.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::Harness h("mamba", "mamba: Mamba vs S4D on selective copying and induction heads (Gu and Dao 2023)");
  Config c;
  CLI::App& app = h.app();
  app.add_option("--task", c.task, "task")->check(CLI::IsMember({"selective-copy", "induction", "shakespeare"}));
  app.add_option("--model", c.model, "sequence mixer (synthetic tasks)")->check(CLI::IsMember({"mamba", "s4d"}));
  app.add_option("--layers", c.layers, "residual layers")->check(CLI::PositiveNumber);
  app.add_option("--width", c.width, "model width")->check(CLI::PositiveNumber);
  app.add_option("--d-state", c.d_state, "SSM state size (S4D gets twice as many real dims: N / 2 complex modes)")
      ->check(CLI::PositiveNumber);
  app.add_option("--vocab", c.vocab, "vocabulary (selective copying: 0 blank, 1 marker, the rest data)")
      ->check(CLI::Range(4, 100000));
  app.add_option("--tokens", c.tokens, "selective copying: data tokens to copy")->check(CLI::PositiveNumber);
  app.add_option("--seq", c.seq, "sequence length (selective copying: the region holding the tokens; shakespeare: the window)")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch", c.batch, "sequences per batch")->check(CLI::PositiveNumber);
  app.add_option("--lr", c.lr, "learning rate (Adam)")->check(CLI::PositiveNumber);
  return h.main(argc, argv, [&] { run(h, c); });
}
