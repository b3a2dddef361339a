// char_rnn: a character-level language model on Tiny Shakespeare (Karpathy's char-rnn, 2015), then a text sample.
// Embedding -> a stack of recurrent layers (--cell lstm|gru|rnn|mingru) -> a linear head over the characters,
// trained with truncated backpropagation through time: the corpus is read as 32 parallel lanes, each batch
// continues the previous one and the recurrent state is carried across batches (detached), so the model sees far
// more context than one 64-character window. Adam with linear warm-up and cosine decay, gradient-norm clipping.
// By default it trains for 3 minutes (--minutes) and aims at a validation loss below 1.6 nats per character.
//
//   char_rnn                                  # train with the defaults, print progress, a sample at the end
//   char_rnn --cell gru --minutes 1 --out out/gru --save
//   char_rnn --resume out/gru --steps 3000    # continue (bit-identically) and extend the run
//   char_rnn --bench                          # one JSON line: tokens/s, ms/step, peak memory
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "recipes/common/budget.h"
#include "recipes/common/harness.h"
#include "recipes/common/metrics.h"
#include "recipes/common/progress.h"
#include "recipes/common/run_state.h"
#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;
using tg::recipes::TensorMap;

namespace {

const std::vector<std::string> kCells = {"lstm", "gru", "rnn", "mingru"};

struct Config {
  std::string cell = "lstm";
  int64_t layers = 2, hidden = 256, embed = 64;
  int64_t batch = 32, seq = 64;
  double lr = 4e-3, min_lr = 2e-4, clip = 5.0, dropout = 0.0, val_fraction = 0.1;
  int64_t warmup = 100;
  int64_t sample_chars = 600;
  double temperature = 0.8;
  std::string prompt = "\n";  // the sample starts as a new line would
  int64_t cell_index() const { return std::find(kCells.begin(), kCells.end(), cell) - kCells.begin(); }
};

// The recurrent state carried from batch to batch: h (and c for the LSTM), each [layers, batch, hidden].
struct State {
  Tensor h, c;
  void detach() {
    if (h.defined()) h = h.detach();
    if (c.defined()) c = c.detach();
  }
};

class CharModel : public tg::nn::Module {
 public:
  CharModel(const Config& cfg, int64_t vocab) {
    embed = register_module("embed", std::make_shared<tg::nn::Embedding>(vocab, cfg.embed));
    tg::nn::RNNOptions o{.input_size = cfg.embed, .hidden_size = cfg.hidden, .num_layers = cfg.layers,
                         .batch_first = true, .dropout = cfg.dropout};
    if (cfg.cell == "lstm") rnn = register_module("rnn", std::make_shared<tg::nn::LSTM>(o));
    if (cfg.cell == "gru") rnn = register_module("rnn", std::make_shared<tg::nn::GRU>(o));
    if (cfg.cell == "rnn") rnn = register_module("rnn", std::make_shared<tg::nn::RNN>(o));
    if (cfg.cell == "mingru") {
      // minGRU has no hidden-to-hidden weights: what one step sees of the past is a gated running average, so the
      // layers are residual blocks x + minGRU(RMSNorm(x)), as in Feng et al.'s language models.
      in_proj = register_module("in_proj", std::make_shared<tg::nn::Linear>(cfg.embed, cfg.hidden));
      min_layers = register_module("min_layers", std::make_shared<tg::nn::ModuleList>());
      norms = register_module("norms", std::make_shared<tg::nn::ModuleList>());
      for (int64_t l = 0; l < cfg.layers; ++l) {
        min_layers->push_back(std::make_shared<tg::nn::MinGRU>(cfg.hidden));
        norms->push_back(std::make_shared<tg::nn::RMSNorm>(tg::Shape{cfg.hidden}));
      }
    }
    head = register_module("head", std::make_shared<tg::nn::Linear>(cfg.hidden, vocab));
  }
  // x int64 [B, T] -> logits [B, T, vocab]; reads and updates the carried state.
  Tensor forward(const Tensor& x, State& s) {
    if (!rnn) return head->forward(forward_min(embed->forward(x), s));
    auto [y, h, c] = rnn->run(embed->forward(x), s.h, s.c, {});
    s.h = h;
    s.c = c;
    return head->forward(y);
  }
  std::shared_ptr<tg::nn::Embedding> embed;
  std::shared_ptr<tg::nn::RNNBase> rnn;  // lstm, gru, rnn
  std::shared_ptr<tg::nn::Linear> in_proj, head;
  std::shared_ptr<tg::nn::ModuleList> min_layers, norms;  // mingru

 private:
  // The minGRU stack; its state is each layer's h, stacked as [layers, B, hidden] like the other cells'.
  Tensor forward_min(Tensor x, State& s) {
    x = in_proj->forward(x);
    std::vector<Tensor> h_in = s.h.defined() ? tg::unbind(s.h, 0) : std::vector<Tensor>(min_layers->size()), h_out;
    for (size_t l = 0; l < min_layers->size(); ++l) {
      auto [y, h] = min_layers->at<tg::nn::MinGRU>(l)->forward(norms->at<tg::nn::RMSNorm>(l)->forward(x), h_in[l]);
      x = x + y;
      h_out.push_back(h);
    }
    s.h = tg::stack(h_out, 0);
    return x;
  }
};

// Mean cross-entropy per target; "sum" for evaluation, which divides by the count itself.
Tensor lm_loss(const Tensor& logits, const Tensor& target, const std::string& reduction = "mean") {
  const int64_t V = logits.size(-1);
  return F::cross_entropy(logits.reshape({-1, V}), target.reshape({-1}), -100, 0.0, reduction);
}

// Validation loss in nats per character over the whole split, read as up to 128 lanes with carried state (wide
// batches: no backward pass, so they cost little memory and make the GEMMs efficient).
double evaluate(CharModel& model, const std::vector<int64_t>& val, int64_t seq) {
  tg::NoGradGuard no_grad;
  model.eval();
  const int64_t lanes = std::max<int64_t>(1, std::min<int64_t>(128, (static_cast<int64_t>(val.size()) - 1) / seq));
  tg::data::LMLaneStream stream(val, {.batch_size = lanes, .seq_len = seq, .drop_last = false});
  State state;
  double sum = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < stream.batches_per_epoch(); ++k) {
    tg::data::Batch b = stream.next();
    sum += lm_loss(model.forward(b.input, state), b.target, "sum").item<double>();
    count += b.target.numel();
  }
  model.train();
  return sum / static_cast<double>(count);
}

// Continues prompt by n characters drawn from softmax(logits / temperature) (argmax at temperature 0).
std::string sample(CharModel& model, const tg::data::Tokenizer& tok, const Config& cfg, uint64_t seed) {
  tg::NoGradGuard no_grad;
  model.eval();
  tg::Generator gen(seed);
  std::vector<int64_t> ids = tok.encode(cfg.prompt);
  State state;
  Tensor logits = model.forward(tg::tensor<int64_t>(ids, {1, static_cast<int64_t>(ids.size())}), state);
  std::string out;
  for (int64_t i = 0; i < cfg.sample_chars; ++i) {
    Tensor last = logits.select(1, logits.size(1) - 1).reshape({-1});
    int64_t next;
    if (cfg.temperature <= 0) {
      next = last.argmax().item<int64_t>();
    } else {
      std::vector<float> p = tg::softmax(last / cfg.temperature, 0).to_vector<float>();
      double u = gen.uniform();
      next = static_cast<int64_t>(p.size()) - 1;
      for (size_t j = 0; j < p.size(); ++j)
        if ((u -= p[j]) < 0) {
          next = static_cast<int64_t>(j);
          break;
        }
    }
    out += tok.token_text(next);
    logits = model.forward(tg::tensor<int64_t>({next}, {1, 1}), state);
  }
  model.train();
  return out;
}

std::string default_corpus() {
  const std::string built_in = std::string(TG_CORPUS_DIR) + "/tinyshakespeare.txt";
  return std::filesystem::exists(built_in) ? built_in : "data/corpora/tinyshakespeare.txt";
}

// One training step on a batch: forward, backward, clip, update. Returns the loss.
double train_step(CharModel& model, tg::optim::Optimizer& opt, const tg::data::Batch& b, State& state,
                  const Config& cfg) {
  state.detach();  // truncated BPTT: gradients stop at the batch boundary, the state itself carries on
  Tensor loss = lm_loss(model.forward(b.input, state), b.target);
  opt.zero_grad();
  loss.backward();
  tg::optim::clip_grad_norm_(opt.parameters(), cfg.clip);
  opt.step();
  return loss.item<double>();
}

// A resumed run must build the model it saved; say which flags that takes rather than fail on a weight's shape.
void check_model_config(const std::string& ckpt, const Tensor& mine) {
  const TensorMap extra = tg::recipes::read_run_extras(ckpt);
  auto it = extra.find("model_config");
  TG_CHECK(it != extra.end() && it->second.dtype() == tg::kInt64 && it->second.numel() == 4,
           "--resume {}: not a char_rnn checkpoint (it has no model_config entry)", ckpt);
  const std::vector<int64_t> c = it->second.to_vector<int64_t>();
  TG_CHECK(tg::equal(it->second, mine), "--resume {}: the checkpoint holds another model; resume it with --cell {} "
           "--layers {} --hidden {} --embed {}", ckpt, c[0] >= 0 && c[0] < 4 ? kCells[static_cast<size_t>(c[0])] : "?",
           c[1], c[2], c[3]);
}

void bench(const Config& cfg, int64_t steps) {
  const int64_t V = 65;  // Tiny Shakespeare's alphabet; random tokens, since --bench reads no files
  CharModel model(cfg, V);
  tg::optim::Adam opt(model.parameters(), {.lr = cfg.lr});
  tg::data::Batch b;
  b.input = tg::randint(0, V, {cfg.batch, cfg.seq});
  b.target = tg::randint(0, V, {cfg.batch, cfg.seq});
  State state;
  tg::recipes::run_bench("char_rnn", steps, 3, static_cast<double>(cfg.batch * cfg.seq),
                         [&] { train_step(model, opt, b, state, cfg); });
}

void run(tg::recipes::Harness& h, Config& cfg) {
  auto& f = h.flags();
  if (f.bench) return bench(cfg, f.steps > 0 ? f.steps : 20);
  const bool resuming = !f.resume.empty();
  if (f.steps > 0 && h.app().count("--minutes") == 0) f.minutes = 0;  // --steps alone means exactly that many

  // ---- data: the vocabulary comes from the corpus, or from the checkpoint when resuming
  const std::string path = f.data.empty() ? default_corpus() : f.data;
  const std::string text = tg::data::read_text_file(path);
  const std::string ckpt = resuming ? tg::recipes::resolve_checkpoint(f.resume) : "";
  std::unique_ptr<tg::data::Tokenizer> tok;
  if (resuming) tok = tg::recipes::load_run_tokenizer(ckpt);
  else tok = std::make_unique<tg::data::CharTokenizer>(tg::data::CharTokenizer::build(text));
  try {
    if (cfg.sample_chars > 0) tok->encode(cfg.prompt);  // say so now, not after training
  } catch (const tg::Error& e) {
    TG_ERROR("--prompt: {}", e.what());
  }
  const tg::data::Split split = tg::data::split_tokens(tok->encode(text), cfg.val_fraction);
  TG_CHECK(!split.val.empty(), "--val-fraction {}: the validation split of {} is empty", cfg.val_fraction, path);

  // ---- model, optimizer, schedule
  const Tensor model_config = tg::tensor<int64_t>({cfg.cell_index(), cfg.layers, cfg.hidden, cfg.embed});
  if (resuming) check_model_config(ckpt, model_config);
  auto model = std::make_shared<CharModel>(cfg, tok->vocab_size());
  tg::optim::Adam opt(model->parameters(), {.lr = cfg.lr});
  auto train_stream = std::make_unique<tg::data::LMLaneStream>(split.train,
                                                                tg::data::LaneOptions{cfg.batch, cfg.seq});
  const int64_t per_epoch = train_stream->batches_per_epoch();

  int64_t step = 0, known_total = 0;
  double elapsed_before = 0, loss_sum = 0;
  int64_t loss_n = 0;
  State state;
  TensorMap extra;
  if (resuming) {
    step = tg::recipes::load_run(ckpt, *model, opt, &extra);
    train_stream->load_state_dict(tg::recipes::take_state(extra, "data."));
    if (extra.count("state.h")) state.h = extra.at("state.h");
    if (extra.count("state.c")) state.c = extra.at("state.c");
    known_total = static_cast<int64_t>(tg::recipes::scalar_value(extra, "total_steps"));
    elapsed_before = tg::recipes::scalar_value(extra, "elapsed_s");
    loss_sum = tg::recipes::scalar_value(extra, "loss_sum");
    loss_n = static_cast<int64_t>(tg::recipes::scalar_value(extra, "loss_n"));
  }
  tg::recipes::StepBudget budget(f.steps, f.minutes * 60, f.steps > 0 ? 0 : known_total);
  auto make_schedule = [&](int64_t total) {
    const int64_t warmup = std::min(cfg.warmup, total / 5);
    return std::make_unique<tg::optim::WarmupCosineLR>(opt, warmup, total, cfg.min_lr);
  };
  auto sched = make_schedule(budget.schedule_length());
  if (resuming) sched->load_state_dict(tg::recipes::take_state(extra, "sched."));

  // ---- what this run is
  fmt::print("char_rnn: {}-layer {}, hidden {}, embedding {} | {} characters | {:.2f}M parameters\n", cfg.layers,
             cfg.cell, cfg.hidden, cfg.embed, tok->vocab_size(), static_cast<double>(model->num_parameters()) / 1e6);
  fmt::print("data: {}: {} train / {} validation characters ({} batches of {} x {} per epoch)\n", path,
             split.train.size(), split.val.size(), per_epoch, cfg.batch, cfg.seq);
  const int threads = tg::get_num_threads();
  const std::string length = budget.by_time() ? "for " + tg::recipes::format_duration(f.minutes * 60)
                                              : fmt::format("{} steps", f.steps);
  fmt::print("training {} on {} thread{}: Adam lr {:.1e}, warm-up {}, cosine to {:.1e}, clip {:.1f}{}\n", length,
             threads, threads == 1 ? "" : "s", cfg.lr, std::min(cfg.warmup, budget.schedule_length() / 5), cfg.min_lr,
             cfg.clip, resuming ? fmt::format(" | resumed at step {}", step) : "");
  std::fflush(stdout);

  tg::recipes::MetricsWriter metrics;
  if (!h.out_dir().empty()) metrics = tg::recipes::MetricsWriter(h.out_path("metrics.jsonl"), resuming ? step : -1);
  tg::recipes::Progress progress(budget.total(), f.minutes * 60, f.log_every);
  progress.start(step, elapsed_before);
  tg::data::PrefetchLoader loader(std::move(train_stream));  // the next batch is cut while this one trains
  const int64_t eval_every = f.eval_every > 0 ? f.eval_every : 250;
  double eval_seconds = NAN, val_loss = NAN;
  int64_t evaluated_at = -1;

  auto validate = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    val_loss = evaluate(*model, split.val, cfg.seq);
    eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    evaluated_at = step;
    progress.message(fmt::format("step {:>5} | val loss {:.4f} | val ppl {:.2f}", step, val_loss, std::exp(val_loss)));
    metrics.write(step, {{"val_loss", val_loss}, {"val_ppl", std::exp(val_loss)}}, progress.elapsed());
    progress.skip_interval();
  };
  // Everything the loop depends on, so that a resumed run continues exactly where this one stands.
  auto save = [&] {
    TensorMap x{{"model_config", model_config},
                {"total_steps", tg::recipes::scalar_entry(static_cast<double>(budget.total()))},
                {"elapsed_s", tg::recipes::scalar_entry(progress.elapsed())},
                {"loss_sum", tg::recipes::scalar_entry(loss_sum)},
                {"loss_n", tg::recipes::scalar_entry(static_cast<double>(loss_n))}};
    tg::recipes::put_state(x, "data.", loader.state_dict());
    tg::recipes::put_state(x, "sched.", sched->state_dict());
    if (state.h.defined()) x["state.h"] = state.h;
    if (state.c.defined()) x["state.c"] = state.c;
    tg::recipes::save_run(h.out_dir(), *model, opt, step, x, tok.get());
  };

  if (!resuming) validate();  // the untrained loss (about ln 65 = 4.17) and the cost of one validation pass
  bool interrupted = false;
  while (!budget.done(step, progress.elapsed())) {
    if (tg::recipes::Harness::interrupted() || (f.stop_after > 0 && step >= f.stop_after)) {
      interrupted = true;
      break;
    }
    const tg::data::Batch b = loader.next();
    if (b.index == 0) state = State{};  // a new pass over the corpus: every lane starts again from its beginning
    const double lr = opt.param_groups()[0].lr;
    const double loss = train_step(*model, opt, b, state, cfg);
    TG_CHECK(std::isfinite(loss), "the loss is {} at step {}: try a lower --lr", loss, step + 1);
    sched->step();
    ++step;
    loss_sum += loss;
    ++loss_n;
    progress.update(step, loss, lr, b.target.numel());
    if (budget.observe(step, progress.elapsed(), progress.seconds_per_step(), eval_seconds / eval_every)) {
      const TensorMap st = sched->state_dict();  // the same position and base lr, over the new length
      sched = make_schedule(budget.total());
      sched->load_state_dict(st);
      progress.set_total(budget.total());
    }
    if (step % 10 == 0) {
      metrics.write(step, {{"loss", loss_sum / loss_n}, {"lr", lr}, {"tokens_per_s", progress.tokens_per_s()}},
                    progress.elapsed());
      loss_sum = 0;
      loss_n = 0;
    }
    if (step % eval_every == 0) validate();
    if (f.save_every > 0 && step % f.save_every == 0) save();
  }
  progress.finish();
  if (interrupted) {  // no final validation: the metrics stay those of an uninterrupted run, up to this step
    fmt::print("stopped at step {} of {}\n", step, budget.total());
  } else {
    if (evaluated_at != step) validate();
    fmt::print("final: step {}, validation loss {:.4f} nats/char (perplexity {:.2f}), {} of training\n", step,
               val_loss, std::exp(val_loss), tg::recipes::format_duration(progress.elapsed()));
  }
  if (f.save) {
    save();
    fmt::print("saved {} (continue with --resume {})\n", h.out_path(tg::recipes::kCheckpointFile), h.out_dir());
  }
  if (cfg.sample_chars > 0 && !interrupted)
    fmt::print("---- sample (temperature {:.2f}) ----\n{}\n----\n", cfg.temperature, sample(*model, *tok, cfg, f.seed));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::CommonFlags defaults;
  defaults.minutes = 3;  // the README's main job: a result in three minutes
  tg::recipes::Harness h("char_rnn", "char_rnn: a character-level recurrent language model on Tiny Shakespeare",
                         defaults);
  Config cfg;
  CLI::App& app = h.app();
  app.add_option("--cell", cfg.cell, "recurrent cell")->check(CLI::IsMember(kCells));
  app.add_option("--layers", cfg.layers, "recurrent layers")->check(CLI::PositiveNumber);
  app.add_option("--hidden", cfg.hidden, "hidden units per layer")->check(CLI::PositiveNumber);
  app.add_option("--embed", cfg.embed, "embedding width")->check(CLI::PositiveNumber);
  app.add_option("--batch", cfg.batch, "lanes per batch")->check(CLI::PositiveNumber);
  app.add_option("--seq", cfg.seq, "characters per lane per batch (the BPTT length)")->check(CLI::PositiveNumber);
  app.add_option("--lr", cfg.lr, "peak learning rate (Adam)")->check(CLI::PositiveNumber);
  app.add_option("--min-lr", cfg.min_lr, "learning rate at the end of the cosine decay")->check(CLI::NonNegativeNumber);
  app.add_option("--warmup", cfg.warmup, "linear warm-up steps")->check(CLI::NonNegativeNumber);
  app.add_option("--clip", cfg.clip, "gradient-norm clipping threshold")->check(CLI::PositiveNumber);
  app.add_option("--dropout", cfg.dropout, "dropout between recurrent layers")->check(CLI::Range(0.0, 0.99));
  app.add_option("--val-fraction", cfg.val_fraction, "the end of the corpus kept for validation")
      ->check(CLI::Range(0.001, 0.5));
  app.add_option("--sample", cfg.sample_chars, "characters to sample at the end (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", cfg.temperature, "sampling temperature (0: greedy)")->check(CLI::NonNegativeNumber);
  app.add_option("--prompt", cfg.prompt, "text the sample continues (default: a newline)")
      ->default_str("")
      ->check([](const std::string& p) { return p.empty() ? std::string("the prompt must not be empty") : ""; });
  return h.main(argc, argv, [&] { run(h, cfg); });
}
