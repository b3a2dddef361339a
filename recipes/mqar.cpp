// mqar: Zoology's associative-recall comparison (Arora et al. 2023, "Zoology: measuring and improving recall in
// efficient language models", Figure 2), scaled to a CPU. Every model is the same small LM
//   embedding (+ learned positions for attention with --positions)
//   -> 2 x (norm, short causal conv, sequence mixer, residual, norm, MLP, residual) -> norm -> head
// with the sequence mixer chosen by name (attention, gla, linear, mamba, lstm, mingru), trained for the same number
// of steps on the same multi-query associative recall data (data/synthetic.h: keys from the lower half of the
// vocabulary, values from the upper half, queries at power-law gaps). The loss and the accuracy are taken only at
// the query positions (predict the key's value). Defaults for a shared 2-core CPU: vocabulary 256, lengths 64 and
// 128 with 4 and 8 pairs, widths 64 and 128, 1500 steps of 32 examples from a fixed set of 20000, AdamW at 3e-3
// and at 1e-3 (the better one reported, as the paper's sweep), stopping at 99% test accuracy.
// Expected, as in the paper: attention near 100%; recurrent models well below at small width, closing the gap as the
// width grows (their state grows with it; attention's is the whole context).
//
//   mqar                                                 # the default comparison, a table at the end
//   mqar --models attention,lstm --widths 64 --seq-lens 64 --lr 3e-3 --out out/mqar
//   mqar --bench                                          # one JSON line for the first model's training step
//
// --out DIR gets results.json (every run, the best learning rate of each cell marked) and one folder per run
// with its metrics.jsonl.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "recipes/common/harness.h"
#include "recipes/common/metrics.h"
#include "recipes/common/progress.h"
#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;

namespace {

const std::vector<std::string> kModels = {"attention", "gla", "linear", "mamba", "lstm", "mingru"};

struct Config {
  std::vector<std::string> models = kModels;
  std::vector<int64_t> widths = {64, 128};
  std::vector<int64_t> seq_lens = {64, 128};
  std::vector<int64_t> kv_pairs;  // one per sequence length, or one for all; none: seq_len / 16 (the paper's)
  int64_t vocab = 256;
  int64_t layers = 2;
  int64_t mlp_ratio = 2;  // hidden width of the MLP over the model width; 0: no MLP (the paper's Figure 2)
  int64_t heads = 1;      // attention heads (the paper: 1)
  int64_t short_conv = 3; // kernel of the depthwise causal convolution before every mixer; 0: none (Figure 2)
  // Learned absolute positions for attention, as Zoology's Figure 2 (the others never have them). Off by default:
  // with the short convolution before it, attention gets the order it needs from the convolution and the causal
  // mask, and the positions (N(0, 1) added to every token) lengthened the plateau before recall was learned: at
  // width 64, length 128, lr 3e-3, seed 0, 0.11 after 1500 steps with them, 0.99 without; at width 128, 0.13
  // against 0.996 (after 1000 steps).
  bool positions = false;
  int64_t train_examples = 20000, test_examples = 500;  // 4000 were memorised (train loss fell, test did not)
  int64_t batch = 32;
  int64_t default_steps = 1500;
  // Zoology sweeps the learning rate per model and reports the best; 1e-2 was too high for attention (0.2 at width
  // 64, L 64 within 600 steps) and 3e-3 too high at width 128, where 1e-3 solves it: the same held in PyTorch.
  std::vector<double> lrs = {3e-3, 1e-3};
  double weight_decay = 0.1, stop_accuracy = 0.99;
  int64_t kv_for(size_t length_index) const {
    if (kv_pairs.empty()) return std::max<int64_t>(1, seq_lens[length_index] / 16);
    return kv_pairs.size() == 1 ? kv_pairs[0] : kv_pairs[length_index];
  }
};

// ---- the comma-separated list flags

std::vector<std::string> split_list(const std::string& text, const char* flag) {
  std::vector<std::string> items;
  std::string item;
  for (size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == ',') {
      TG_CHECK(!item.empty(), "{}: an empty item in '{}'", flag, text);
      items.push_back(item);
      item.clear();
    } else {
      item += text[i];
    }
  return items;
}

// Comma-separated positive numbers: integers (--widths, --seq-lens, --kv-pairs) or reals (--lr).
template <class T>
std::vector<T> positive_list(const std::string& text, const char* flag) {
  constexpr bool integral = std::is_integral_v<T>;
  std::vector<T> values;
  for (const std::string& item : split_list(text, flag)) {
    size_t used = 0;
    T v = 0;
    try {
      if constexpr (integral) v = std::stoll(item, &used);
      else v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TG_CHECK(used == item.size() && v > 0 && std::isfinite(static_cast<double>(v)), "{}: '{}' is not a positive {}",
             flag, item, integral ? "integer" : "number");
    values.push_back(v);
  }
  return values;
}

// ---- sequence mixers: [B, T, d] -> [B, T, d], causal

// Causal softmax self-attention: nn::MultiheadAttention's self-attention path (the fused SDPA kernel).
class AttentionMixer : public tg::nn::UnaryModule {
 public:
  AttentionMixer(int64_t d, int64_t heads) {
    TG_CHECK(heads >= 1 && d % heads == 0, "--heads {} must divide the width {}", heads, d);
    attn = register_module("attn", std::make_shared<tg::nn::MultiheadAttention>(
                                       tg::nn::MultiheadAttentionOptions{.embed_dim = d, .num_heads = heads}));
  }
  Tensor forward(const Tensor& x) override { return attn->self_attention(x, {}, /*is_causal=*/true); }
  std::shared_ptr<tg::nn::MultiheadAttention> attn;
};

class LSTMMixer : public tg::nn::UnaryModule {
 public:
  explicit LSTMMixer(int64_t d) {
    lstm = register_module("lstm", std::make_shared<tg::nn::LSTM>(
                                       tg::nn::RNNOptions{.input_size = d, .hidden_size = d, .batch_first = true}));
  }
  Tensor forward(const Tensor& x) override { return std::get<0>(lstm->forward(x)); }
  std::shared_ptr<tg::nn::LSTM> lstm;
};

class MinGRUMixer : public tg::nn::UnaryModule {
 public:
  explicit MinGRUMixer(int64_t d) { rnn = register_module("rnn", std::make_shared<tg::nn::MinGRU>(d)); }
  Tensor forward(const Tensor& x) override { return std::get<0>(rnn->forward(x)); }
  std::shared_ptr<tg::nn::MinGRU> rnn;
};

// The mixer factory: a tg::Error naming the known mixers for any other name.
std::shared_ptr<tg::nn::UnaryModule> make_mixer(const std::string& name, int64_t d, const Config& cfg) {
  if (name == "attention") return std::make_shared<AttentionMixer>(d, cfg.heads);
  // GLA and linear attention with their layers' defaults (fla's GLA: d_k = d / 2, d_v = d, 4 heads).
  if (name == "gla") return std::make_shared<tg::nn::GatedLinearAttention>(tg::nn::GLAOptions{.d_model = d});
  if (name == "linear") return std::make_shared<tg::nn::LinearAttention>(d, 4);
  if (name == "mamba") return std::make_shared<tg::nn::Mamba>(tg::nn::MambaOptions{.d_model = d});  // N 16, expand 2
  if (name == "lstm") return std::make_shared<LSTMMixer>(d);
  if (name == "mingru") return std::make_shared<MinGRUMixer>(d);
  TG_ERROR("--models: unknown model '{}' (known: {})", name, fmt::join(kModels, ", "));
}

// ---- the model shared by every mixer

// A short convolution hands every position its few predecessors (a value sees its key), which is what lets a
// recall model be learned in hundreds rather than tens of thousands of steps; Zoology's later experiments put one
// before every mixer (the "Based recipe") and so does this block, for every model alike.
class ShortConv : public tg::nn::UnaryModule {
 public:
  ShortConv(int64_t d, int64_t kernel) {
    conv = register_module("conv", std::make_shared<tg::nn::Conv1d>(tg::nn::Conv1dOptions{
                                       .in_channels = d, .out_channels = d, .kernel_size = kernel, .groups = d,
                                       .causal = true}));
  }
  Tensor forward(const Tensor& x) override { return conv->forward(x.transpose(1, 2)).transpose(1, 2); }  // [B, T, d]
  std::shared_ptr<tg::nn::Conv1d> conv;
};

class Block : public tg::nn::Module {
 public:
  Block(const std::string& mixer_name, int64_t d, const Config& cfg) {
    norm1 = register_module("norm1", std::make_shared<tg::nn::LayerNorm>(tg::Shape{d}));
    if (cfg.short_conv > 0) conv = register_module("conv", std::make_shared<ShortConv>(d, cfg.short_conv));
    mixer = register_module("mixer", make_mixer(mixer_name, d, cfg));
    if (cfg.mlp_ratio > 0) {
      norm2 = register_module("norm2", std::make_shared<tg::nn::LayerNorm>(tg::Shape{d}));
      fc1 = register_module("fc1", std::make_shared<tg::nn::Linear>(d, cfg.mlp_ratio * d));
      fc2 = register_module("fc2", std::make_shared<tg::nn::Linear>(cfg.mlp_ratio * d, d));
    }
  }
  Tensor forward(Tensor x) {
    Tensor u = norm1->forward(x);
    x = x + mixer->forward(conv ? conv->forward(u) : u);
    if (fc1) x = x + fc2->forward(tg::gelu(fc1->forward(norm2->forward(x))));
    return x;
  }
  std::shared_ptr<tg::nn::LayerNorm> norm1, norm2;
  std::shared_ptr<ShortConv> conv;
  std::shared_ptr<tg::nn::UnaryModule> mixer;
  std::shared_ptr<tg::nn::Linear> fc1, fc2;
};

class MixerLM : public tg::nn::Module {
 public:
  MixerLM(const std::string& mixer_name, int64_t d, int64_t max_len, const Config& cfg) {
    embed = register_module("embed", std::make_shared<tg::nn::Embedding>(cfg.vocab, d));
    // Attention alone has no notion of order; the short convolution and the causal mask give it enough here.
    if (mixer_name == "attention" && cfg.positions)
      pos = register_module("pos", std::make_shared<tg::nn::Embedding>(max_len, d));
    blocks = register_module("blocks", std::make_shared<tg::nn::ModuleList>());
    for (int64_t l = 0; l < cfg.layers; ++l) blocks->push_back(std::make_shared<Block>(mixer_name, d, cfg));
    norm = register_module("norm", std::make_shared<tg::nn::LayerNorm>(tg::Shape{d}));
    head = register_module("head", std::make_shared<tg::nn::Linear>(d, cfg.vocab));
  }
  // x int64 [B, T]; rows int64 [N] of flattened positions b * T + t to score -> logits [N, vocab]. The head runs
  // only where a loss is taken (the query positions, a small fraction of the sequence).
  Tensor forward(const Tensor& x, const Tensor& rows) {
    const int64_t T = x.size(1);
    Tensor h = embed->forward(x);
    if (pos) h = h + pos->forward(tg::arange(static_cast<double>(T)));
    for (size_t l = 0; l < blocks->size(); ++l) h = blocks->at<Block>(l)->forward(h);
    h = tg::index_select(h.reshape({-1, h.size(-1)}), 0, rows);
    return head->forward(norm->forward(h));
  }
  std::shared_ptr<tg::nn::Embedding> embed, pos;
  std::shared_ptr<tg::nn::ModuleList> blocks;
  std::shared_ptr<tg::nn::LayerNorm> norm;
  std::shared_ptr<tg::nn::Linear> head;
};

// ---- data

// The scored positions of a batch: their flattened indices and their targets.
struct Queries {
  Tensor rows, target;
};
Queries queries(const Tensor& target) {
  const std::vector<int64_t> t = target.contiguous().to_vector<int64_t>();
  std::vector<int64_t> rows, values;
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] != tg::data::kIgnore) {
      rows.push_back(static_cast<int64_t>(i));
      values.push_back(t[i]);
    }
  const auto n = static_cast<int64_t>(rows.size());
  return {tg::tensor<int64_t>(rows, {n}), tg::tensor<int64_t>(values, {n})};
}

struct Split {
  tg::data::Batch train, test;
};
Split make_data(const Config& cfg, int64_t seq_len, int64_t kv_pairs, uint64_t seed) {
  // The paper's Figure-2 data: filler tokens are 0 (random_non_queries = false).
  const tg::data::MqarOptions o{.vocab_size = cfg.vocab, .num_kv_pairs = kv_pairs, .seq_len = seq_len,
                                .random_non_queries = false};
  tg::Generator train_gen(seed), test_gen(seed + 1000003);
  return {tg::data::mqar(o, cfg.train_examples, train_gen), tg::data::mqar(o, cfg.test_examples, test_gen)};
}

tg::data::Batch rows_of(const tg::data::Batch& all, const Tensor& index) {
  tg::data::Batch b;
  b.input = tg::index_select(all.input, 0, index);
  b.target = tg::index_select(all.target, 0, index);
  return b;
}

// Fraction of query positions whose argmax is the value, over the whole set (batches of cfg.batch, no grad).
double accuracy(MixerLM& model, const tg::data::Batch& set, const Config& cfg) {
  tg::NoGradGuard no_grad;
  model.eval();
  const int64_t n = set.input.size(0);
  int64_t correct = 0, total = 0;
  for (int64_t i = 0; i < n; i += cfg.batch) {
    const int64_t m = std::min(cfg.batch, n - i);
    const Queries q = queries(set.target.narrow(0, i, m));
    const Tensor pred = tg::argmax(model.forward(set.input.narrow(0, i, m), q.rows), -1);
    correct += tg::sum(tg::eq(pred, q.target).to(tg::kInt64)).item<int64_t>();
    total += q.target.numel();
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(total, 1));
}

double train_step(MixerLM& model, tg::optim::Optimizer& opt, const tg::data::Batch& b) {
  const Queries q = queries(b.target);
  Tensor loss = F::cross_entropy(model.forward(b.input, q.rows), q.target);
  opt.zero_grad();
  loss.backward();
  tg::optim::clip_grad_norm_(opt.parameters(), 1.0);
  opt.step();
  return loss.item<double>();
}

// ---- one run: a model at a width on one sequence length

struct Result {
  std::string model;
  int64_t width = 0, seq_len = 0, kv_pairs = 0;
  double lr = 0;
  int64_t params = 0, steps = 0;
  double accuracy = 0, final_loss = 0, seconds = 0;
  bool best = false;  // the best learning rate of its (model, width, length) cell
};

Result run_one(tg::recipes::Harness& h, const Config& cfg, const std::string& name, int64_t width, int64_t seq_len,
               int64_t kv_pairs, double lr, int64_t steps, const Split& data) {
  auto& f = h.flags();
  tg::manual_seed(f.seed);  // the same initialisation stream for every run
  MixerLM model(name, width, seq_len, cfg);
  tg::optim::AdamW opt(model.parameters(), {.lr = lr, .weight_decay = cfg.weight_decay});
  tg::optim::WarmupCosineLR sched(opt, std::max<int64_t>(1, steps / 10), steps, 0.0);
  const std::string run_name = fmt::format("{}_d{}_L{}_lr{:g}", name, width, seq_len, lr);
  tg::recipes::MetricsWriter metrics;
  if (!h.out_dir().empty()) {
    std::filesystem::create_directories(h.out_path(run_name));
    metrics = tg::recipes::MetricsWriter(h.out_path(run_name + "/metrics.jsonl"));
  }
  fmt::print("== {}: width {}, length {}, {} pairs, lr {:g} | {} parameters\n", run_name, width, seq_len, kv_pairs, lr,
             model.num_parameters());
  std::fflush(stdout);

  const int64_t eval_every = f.eval_every > 0 ? f.eval_every : std::max<int64_t>(steps / 5, 1);
  const int64_t n = data.train.input.size(0);
  tg::Generator order_gen(f.seed + 7);
  std::vector<int64_t> order;
  size_t next = 0;
  tg::recipes::Progress progress(steps, 0, f.log_every);
  progress.start(0);
  Result r{name, width, seq_len, kv_pairs, lr, model.num_parameters()};
  double loss_sum = 0, acc = 0;
  int64_t loss_n = 0, step = 0;
  while (step < steps && !tg::recipes::Harness::interrupted()) {
    if (next + static_cast<size_t>(cfg.batch) > order.size()) {  // a new epoch over the training set, reshuffled
      order.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
      for (int64_t i = n - 1; i > 0; --i)
        std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(order_gen.next_u64() % (i + 1))]);
      next = 0;
    }
    const std::vector<int64_t> idx(order.begin() + static_cast<std::ptrdiff_t>(next),
                                   order.begin() + static_cast<std::ptrdiff_t>(next) + cfg.batch);
    next += static_cast<size_t>(cfg.batch);
    const tg::data::Batch b = rows_of(data.train, tg::tensor<int64_t>(idx, {cfg.batch}));
    const double step_lr = opt.param_groups()[0].lr;
    const double loss = train_step(model, opt, b);
    TG_CHECK(std::isfinite(loss), "{}: the loss is {} at step {}: try a lower --lr", run_name, loss, step + 1);
    sched.step();
    ++step;
    loss_sum += loss;
    ++loss_n;
    r.final_loss = loss;
    progress.update(step, loss, step_lr, b.input.numel());
    if (step % 10 == 0 || step == steps) {
      metrics.write(step, {{"loss", loss_sum / loss_n}, {"lr", step_lr}, {"tokens_per_s", progress.tokens_per_s()}},
                    progress.elapsed());
      loss_sum = 0;
      loss_n = 0;
    }
    if (step % eval_every == 0 || step == steps) {
      acc = accuracy(model, data.test, cfg);
      metrics.write(step, {{"accuracy", acc}}, progress.elapsed());
      progress.message(fmt::format("step {:>5} | test accuracy {:.3f}", step, acc));
      progress.skip_interval();
      if (acc >= cfg.stop_accuracy) break;  // the paper's early stop
    }
  }
  progress.finish();
  if (step % eval_every != 0 && step != steps) acc = accuracy(model, data.test, cfg);  // interrupted mid-interval
  r.accuracy = acc;
  r.steps = step;
  r.seconds = progress.elapsed();
  fmt::print("{}: test accuracy {:.3f} after {} steps ({})\n", run_name, r.accuracy, step,
             tg::recipes::format_duration(r.seconds));
  std::fflush(stdout);
  return r;
}

// ---- the table

void print_table(const Config& cfg, const std::vector<Result>& results) {
  std::string header = fmt::format("{:<10} {:>6}", "model", "width");
  for (size_t i = 0; i < cfg.seq_lens.size(); ++i)
    header += fmt::format(" {:>14}", fmt::format("L{} K{}", cfg.seq_lens[i], cfg.kv_for(i)));
  fmt::print("\ntest accuracy at the query positions (the best learning rate of {})\n{}\n",
             fmt::join(cfg.lrs, ", "), header);
  for (const auto& m : cfg.models)
    for (int64_t w : cfg.widths) {
      std::string line = fmt::format("{:<10} {:>6}", m, w);
      for (int64_t L : cfg.seq_lens) {
        auto it = std::find_if(results.begin(), results.end(), [&](const Result& r) {
          return r.best && r.model == m && r.width == w && r.seq_len == L;
        });
        line += it == results.end() ? fmt::format(" {:>14}", "-")
                                    : fmt::format(" {:>14}", fmt::format("{:.3f} ({:g})", it->accuracy, it->lr));
      }
      fmt::print("{}\n", line);
    }
  std::fflush(stdout);
}

// ---- results.json, and --resume from it

// Everything a run's result depends on besides its own model, width, length, pairs and rate: a resumed comparison
// takes a finished run from results.json only when all of this is the same.
nlohmann::json task_json(const Config& cfg, int64_t steps, uint64_t seed) {
  return {{"vocab", cfg.vocab},
          {"train_examples", cfg.train_examples},
          {"test_examples", cfg.test_examples},
          {"batch", cfg.batch},
          {"layers", cfg.layers},
          {"mlp_ratio", cfg.mlp_ratio},
          {"short_conv", cfg.short_conv},
          {"heads", cfg.heads},
          {"positions", cfg.positions},
          {"weight_decay", cfg.weight_decay},
          {"stop_accuracy", cfg.stop_accuracy},
          {"steps", steps},
          {"seed", seed}};
}

void write_json(const std::string& path, const nlohmann::json& task, const Config& cfg,
                const std::vector<Result>& results) {
  nlohmann::json j;
  j["task"] = task;
  j["lrs"] = cfg.lrs;
  j["results"] = nlohmann::json::array();
  for (const auto& r : results)
    j["results"].push_back({{"model", r.model},
                            {"width", r.width},
                            {"seq_len", r.seq_len},
                            {"kv_pairs", r.kv_pairs},
                            {"lr", r.lr},
                            {"best", r.best},
                            {"accuracy", r.accuracy},
                            {"final_loss", r.final_loss},
                            {"params", r.params},
                            {"steps", r.steps},
                            {"seconds", r.seconds}});
  std::ofstream out(path);
  TG_CHECK(out.good(), "cannot write {}", path);
  out << j.dump(2) << "\n";
}

// The runs of an earlier results.json (the file, or the folder holding it), which must have the same task.
std::vector<Result> load_results(const std::string& where, const nlohmann::json& task) {
  const std::string path = std::filesystem::is_directory(where) ? where + "/results.json" : where;
  std::ifstream in(path);
  TG_CHECK(in.good(), "--resume: cannot read {}", path);
  nlohmann::json j;
  std::vector<Result> results;
  try {
    in >> j;
    TG_CHECK(j.contains("task") && j.contains("results"), "--resume: {} is not an mqar results.json (it has no "
             "\"task\" and \"results\")", path);
    std::vector<std::string> differ;
    for (const auto& [key, value] : task.items())
      if (!j["task"].contains(key) || j["task"][key] != value)
        differ.push_back(fmt::format("{} {} there, {} here", key, j["task"].value(key, nlohmann::json()).dump(),
                                     value.dump()));
    TG_CHECK(differ.empty() && j["task"].size() == task.size(), "--resume: {} comes from another configuration: {}",
             path, differ.empty() ? j["task"].dump() : fmt::format("{}", fmt::join(differ, ", ")));
    for (const auto& r : j.at("results"))
      results.push_back({r.at("model").get<std::string>(), r.at("width").get<int64_t>(),
                         r.at("seq_len").get<int64_t>(), r.at("kv_pairs").get<int64_t>(), r.at("lr").get<double>(),
                         r.at("params").get<int64_t>(), r.at("steps").get<int64_t>(), r.at("accuracy").get<double>(),
                         r.at("final_loss").get<double>(), r.at("seconds").get<double>()});
  } catch (const nlohmann::json::exception& e) {
    TG_ERROR("--resume: {} is not a readable mqar results.json: {}", path, e.what());
  }
  return results;
}

void bench(const Config& cfg, int64_t steps) {
  const int64_t L = cfg.seq_lens[0], K = cfg.kv_for(0), d = cfg.widths[0];
  tg::Generator gen(0);
  const tg::data::Batch b = tg::data::mqar({.vocab_size = cfg.vocab, .num_kv_pairs = K, .seq_len = L}, cfg.batch, gen);
  MixerLM model(cfg.models[0], d, L, cfg);
  tg::optim::AdamW opt(model.parameters(), {.lr = cfg.lrs[0], .weight_decay = cfg.weight_decay});
  tg::recipes::run_bench("mqar", steps, 3, static_cast<double>(b.input.numel()), [&] { train_step(model, opt, b); });
}

void run(tg::recipes::Harness& h, Config& cfg) {
  auto& f = h.flags();
  TG_CHECK(!f.save, "--save: mqar has no checkpoints; with --out it rewrites results.json after every run, and "
           "--resume DIR goes on from there");
  TG_CHECK(!cfg.models.empty() && !cfg.widths.empty() && !cfg.seq_lens.empty(),
           "--models, --widths and --seq-lens need at least one value each");
  TG_CHECK(cfg.batch <= cfg.train_examples, "--batch {} exceeds --train-examples {}", cfg.batch,
           cfg.train_examples);
  TG_CHECK(cfg.kv_pairs.size() <= 1 || cfg.kv_pairs.size() == cfg.seq_lens.size(),
           "--kv-pairs takes one value, or one per sequence length ({} given for {} lengths)",
           cfg.kv_pairs.size(), cfg.seq_lens.size());
  for (const auto& m : cfg.models) make_mixer(m, 8, Config{});  // an unknown name fails now, not after training
  Config probe = cfg;  // and so does a task that does not fit
  probe.train_examples = probe.test_examples = 1;
  for (size_t i = 0; i < cfg.seq_lens.size(); ++i) make_data(probe, cfg.seq_lens[i], cfg.kv_for(i), 0);
  if (f.bench) return bench(cfg, f.steps > 0 ? f.steps : 10);
  const int64_t steps = f.steps > 0 ? f.steps : cfg.default_steps;

  fmt::print("mqar: vocab {}, {} train / {} test examples, {} layers, short conv {}, MLP x{}, AdamW lr {} wd {}, "
             "batch {}, {} steps per run, {} thread{}\n",
             cfg.vocab, cfg.train_examples, cfg.test_examples, cfg.layers, cfg.short_conv, cfg.mlp_ratio,
             fmt::join(cfg.lrs, " or "),
             cfg.weight_decay,
             cfg.batch, steps, tg::get_num_threads(), tg::get_num_threads() == 1 ? "" : "s");
  const nlohmann::json task = task_json(cfg, steps, f.seed);
  const std::vector<Result> finished = f.resume.empty() ? std::vector<Result>{} : load_results(f.resume, task);
  std::vector<Result> results;
  for (size_t i = 0; i < cfg.seq_lens.size(); ++i) {
    const int64_t L = cfg.seq_lens[i], K = cfg.kv_for(i);
    const Split data = make_data(cfg, L, K, f.seed * 1000 + static_cast<uint64_t>(L));  // the same data for all
    for (const auto& m : cfg.models)
      for (int64_t w : cfg.widths) {
        // Every learning rate of the sweep, the best one marked; once one reaches the stop accuracy the others
        // cannot do meaningfully better, and are skipped.
        const auto cell = static_cast<std::ptrdiff_t>(results.size());
        for (double lr : cfg.lrs) {
          if (tg::recipes::Harness::interrupted()) break;
          // Every run is seeded on its own, so a finished one is exactly what running it again would give.
          auto done = std::find_if(finished.begin(), finished.end(), [&](const Result& r) {
            return r.model == m && r.width == w && r.seq_len == L && r.kv_pairs == K && r.lr == lr;
          });
          if (done != finished.end())
            fmt::print("== {}_d{}_L{}_lr{:g}: finished before (--resume), test accuracy {:.3f}\n", m, w, L, lr,
                       done->accuracy);
          results.push_back(done != finished.end() ? *done : run_one(h, cfg, m, w, L, K, lr, steps, data));
          for (auto it = results.begin() + cell; it != results.end(); ++it) it->best = false;
          std::max_element(results.begin() + cell, results.end(), [](const Result& a, const Result& b) {
            return a.accuracy < b.accuracy;
          })->best = true;
          if (!h.out_dir().empty()) write_json(h.out_path("results.json"), task, cfg, results);  // partial results survive
          if (results.back().accuracy >= cfg.stop_accuracy) break;
        }
      }
  }
  print_table(cfg, results);
  if (!h.out_dir().empty()) fmt::print("wrote {}\n", h.out_path("results.json"));
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::Harness h("mqar", "mqar: multi-query associative recall, attention vs recurrent models (Zoology)");
  Config cfg;
  CLI::App& app = h.app();
  // The lists are read as strings: a flag given twice then takes its last value, as every other flag does.
  std::string models = fmt::format("{}", fmt::join(cfg.models, ",")), widths = "64,128", seq_lens = "64,128",
              kv_pairs, lrs = "3e-3,1e-3";
  app.add_option("--models", models, fmt::format("sequence mixers to compare, comma-separated (known models: {})",
                                                 fmt::join(kModels, ",")));
  app.add_option("--widths", widths, "model widths, comma-separated");
  app.add_option("--seq-lens", seq_lens, "sequence lengths, comma-separated");
  app.add_option("--kv-pairs", kv_pairs,
                 "key-value pairs per sequence: one per length, or one for all (default: length / 16, as the "
                 "paper's (64, 4), (128, 8), (256, 16))");
  app.add_option("--vocab", cfg.vocab, "vocabulary size (keys below half, values above)")->check(CLI::PositiveNumber);
  app.add_option("--layers", cfg.layers, "blocks per model")->check(CLI::PositiveNumber);
  app.add_option("--mlp-ratio", cfg.mlp_ratio, "MLP width over model width (0: no MLP)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--heads", cfg.heads, "attention heads")->check(CLI::PositiveNumber);
  app.add_flag("--positions,!--no-positions", cfg.positions,
               "learned absolute positions for attention (Zoology's Figure 2; off by default)");
  app.add_option("--short-conv", cfg.short_conv, "kernel of the short causal convolution before each mixer (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--train-examples", cfg.train_examples, "training set size")->check(CLI::PositiveNumber);
  app.add_option("--test-examples", cfg.test_examples, "test set size")->check(CLI::PositiveNumber);
  app.add_option("--batch", cfg.batch, "examples per step")->check(CLI::PositiveNumber);
  app.add_option("--lr", lrs,
                 "peak learning rates, comma-separated (AdamW, warm-up then cosine to 0): every cell is trained at "
                 "each in turn, until one reaches --stop-accuracy, and the best is reported");
  app.add_option("--weight-decay", cfg.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber);
  app.add_option("--stop-accuracy", cfg.stop_accuracy, "stop a run early at this test accuracy (the paper: 0.99)")
      ->check(CLI::Range(0.0, 1.0));
  return h.main(argc, argv, [&] {
    cfg.models = split_list(models, "--models");
    cfg.widths = positive_list<int64_t>(widths, "--widths");
    cfg.seq_lens = positive_list<int64_t>(seq_lens, "--seq-lens");
    cfg.lrs = positive_list<double>(lrs, "--lr");
    cfg.kv_pairs = kv_pairs.empty() ? std::vector<int64_t>{} : positive_list<int64_t>(kv_pairs, "--kv-pairs");
    run(h, cfg);
  });
}
