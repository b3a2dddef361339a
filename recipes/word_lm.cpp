// word_lm: a word-level LSTM language model (Zaremba, Sutskever & Vinyals 2014, "Recurrent Neural Network
// Regularization", the "small" model) on WikiText-2, or on Penn Treebank from a folder given with --data.
// Embedding -> 2 LSTM layers of 200 -> a linear head over the vocabulary, trained with truncated backpropagation
// through time: the corpus is read as 20 lanes, each batch of 20 steps continues the previous one and the state is
// carried across batches (detached). SGD with lr 1, halved every epoch after the 4th, 13 epochs, gradient-norm clip
// 5, every weight uniform in +-0.1, no dropout. Prints validation and test perplexity after every epoch.
//
// The learning rate 1 belongs to a loss SUMMED over the 20 unrolled steps and averaged over the batch, as the
// paper's Lua code and the TensorFlow tutorial compute it: with the per-token mean the same lr is 20 times smaller.
//
//   word_lm                                     # WikiText-2 from data/corpora
//   word_lm --data /path/to/ptb --out out/ptb   # PTB (train.txt, valid.txt, test.txt); the paper: test ppl 114.5
//   word_lm --bench                             # one JSON line: tokens/s, ms/step, peak memory
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "recipes/common/harness.h"
#include "recipes/common/metrics.h"
#include "recipes/common/progress.h"
#include "recipes/common/run_state.h"
#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;
using tg::recipes::TensorMap;

namespace {

struct Config {
  int64_t layers = 2, hidden = 200;
  int64_t batch = 20, seq = 20;
  double lr = 1.0, lr_decay = 0.5, clip = 5.0, init_scale = 0.1;
  int64_t epochs = 13, decay_after = 4;  // epochs at the full lr; then lr *= lr_decay every epoch
};

// h and c of every layer, [layers, batch, hidden], carried from batch to batch.
struct State {
  Tensor h, c;
  void detach() {
    if (h.defined()) h = h.detach();
    if (c.defined()) c = c.detach();
  }
};

class WordModel : public tg::nn::Module {
 public:
  WordModel(const Config& cfg, int64_t vocab) {
    embed = register_module("embed", std::make_shared<tg::nn::Embedding>(vocab, cfg.hidden));
    lstm = register_module("lstm", std::make_shared<tg::nn::LSTM>(tg::nn::RNNOptions{
                                       .input_size = cfg.hidden, .hidden_size = cfg.hidden,
                                       .num_layers = cfg.layers, .batch_first = true}));
    head = register_module("head", std::make_shared<tg::nn::Linear>(cfg.hidden, vocab));
    for (Tensor& p : parameters()) tg::nn::init::uniform_(p, -cfg.init_scale, cfg.init_scale);
  }
  // x int64 [B, T] -> logits [B * T, vocab]; reads and updates the carried state.
  Tensor forward(const Tensor& x, State& s) {
    auto [y, h, c] = lstm->run(embed->forward(x), s.h, s.c, {});
    s.h = h;
    s.c = c;
    return head->forward(y.reshape({-1, y.size(-1)}));
  }
  std::shared_ptr<tg::nn::Embedding> embed;
  std::shared_ptr<tg::nn::LSTM> lstm;
  std::shared_ptr<tg::nn::Linear> head;
};

// The summed cross-entropy of a batch, in nats.
Tensor summed_loss(const Tensor& logits, const Tensor& target) {
  return F::cross_entropy(logits, target.reshape({-1}), -100, 0.0, "sum");
}

// Perplexity exp(mean loss per word) over a whole split, read as `lanes` lanes with carried state.
double perplexity(WordModel& model, const std::vector<int64_t>& tokens, int64_t lanes, int64_t seq) {
  tg::NoGradGuard no_grad;
  model.eval();
  tg::data::LMLaneStream stream(tokens, {.batch_size = lanes, .seq_len = seq, .drop_last = false});
  State state;
  double sum = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < stream.batches_per_epoch(); ++k) {
    const tg::data::Batch b = stream.next();
    sum += summed_loss(model.forward(b.input, state), b.target).item<double>();
    count += b.target.numel();
  }
  model.train();
  return std::exp(sum / static_cast<double>(count));
}

// One step: forward, the loss summed over the unrolled steps and averaged over the batch, backward, clip, SGD.
// Returns the mean loss per word (for the progress line and the train perplexity).
double train_step(WordModel& model, tg::optim::SGD& opt, const tg::data::Batch& b, State& state, const Config& cfg) {
  state.detach();
  Tensor sum = summed_loss(model.forward(b.input, state), b.target);
  Tensor loss = sum / static_cast<double>(b.input.size(0));
  opt.zero_grad();
  loss.backward();
  tg::optim::clip_grad_norm_(opt.parameters(), cfg.clip);
  opt.step();
  return sum.item<double>() / static_cast<double>(b.target.numel());
}

// The lr of epoch e (counted from 0): lr for the first decay_after epochs, then halved each epoch.
double epoch_lr(const Config& cfg, int64_t epoch) {
  return cfg.lr * std::pow(cfg.lr_decay, static_cast<double>(std::max<int64_t>(0, epoch + 1 - cfg.decay_after)));
}

struct Corpus {
  std::string dir;
  std::unique_ptr<tg::data::WordTokenizer> tok;
  std::vector<int64_t> train, valid, test;
};

// train.txt, valid.txt and test.txt of dir; the vocabulary is the training split's (the tokenizer saved in a
// checkpoint, when resuming).
Corpus load_corpus(const std::string& dir, const tg::data::Tokenizer* saved) {
  Corpus c;
  c.dir = dir;
  TG_CHECK(std::filesystem::is_directory(dir), "--data {}: no such folder (it must hold train.txt, valid.txt and "
           "test.txt)", dir);
  const std::string train = tg::data::read_text_file((std::filesystem::path(dir) / "train.txt").string());
  const std::string valid = tg::data::read_text_file((std::filesystem::path(dir) / "valid.txt").string());
  const std::string test = tg::data::read_text_file((std::filesystem::path(dir) / "test.txt").string());
  if (saved != nullptr) {
    TG_CHECK(saved->kind() == "word", "--resume: the checkpoint's tokenizer is a {} tokenizer, not a word one",
             saved->kind());
    c.tok = std::make_unique<tg::data::WordTokenizer>(
        dynamic_cast<const tg::data::WordTokenizer&>(*saved));
  } else {
    c.tok = std::make_unique<tg::data::WordTokenizer>(tg::data::WordTokenizer::build(train));
  }
  c.train = c.tok->encode(train);
  c.valid = c.tok->encode(valid);
  c.test = c.tok->encode(test);
  TG_CHECK(!c.valid.empty() && !c.test.empty(), "--data {}: valid.txt or test.txt is empty", dir);
  return c;
}

void bench(const Config& cfg, int64_t steps) {
  const int64_t V = 10000;  // PTB's vocabulary; random tokens, since --bench reads no files
  WordModel model(cfg, V);
  tg::optim::SGD opt(model.parameters(), {.lr = cfg.lr});
  tg::data::Batch b;
  b.input = tg::randint(0, V, {cfg.batch, cfg.seq});
  b.target = tg::randint(0, V, {cfg.batch, cfg.seq});
  State state;
  tg::recipes::run_bench("word_lm", steps, 3, static_cast<double>(cfg.batch * cfg.seq),
                         [&] { train_step(model, opt, b, state, cfg); });
}

void run(tg::recipes::Harness& h, Config& cfg) {
  auto& f = h.flags();
  if (f.bench) return bench(cfg, f.steps > 0 ? f.steps : 20);
  const bool resuming = !f.resume.empty();
  const std::string ckpt = resuming ? tg::recipes::resolve_checkpoint(f.resume) : "";
  std::unique_ptr<tg::data::Tokenizer> saved_tok;
  if (resuming) saved_tok = tg::recipes::load_run_tokenizer(ckpt);
  const Corpus corpus = load_corpus(f.data.empty() ? std::string(TG_CORPUS_DIR) + "/wikitext-2" : f.data,
                                    saved_tok.get());
  const int64_t V = corpus.tok->vocab_size();

  auto model = std::make_shared<WordModel>(cfg, V);
  tg::optim::SGD opt(model->parameters(), {.lr = cfg.lr});
  auto train_stream = std::make_unique<tg::data::LMLaneStream>(corpus.train, tg::data::LaneOptions{cfg.batch, cfg.seq});
  const int64_t per_epoch = train_stream->batches_per_epoch();
  const int64_t total = f.steps > 0 ? f.steps : cfg.epochs * per_epoch;

  int64_t step = 0;
  double elapsed_before = 0;
  double epoch_sum = 0, log_sum = 0;  // summed losses of this epoch's words and since the last metrics line
  int64_t epoch_words = 0, log_n = 0;
  State state;
  if (resuming) {
    TensorMap extra;
    step = tg::recipes::load_run(ckpt, *model, opt, &extra);
    train_stream->load_state_dict(tg::recipes::take_state(extra, "data."));
    if (extra.count("state.h")) state.h = extra.at("state.h");
    if (extra.count("state.c")) state.c = extra.at("state.c");
    elapsed_before = tg::recipes::scalar_value(extra, "elapsed_s");
    epoch_sum = tg::recipes::scalar_value(extra, "epoch_sum");
    epoch_words = static_cast<int64_t>(tg::recipes::scalar_value(extra, "epoch_words"));
    log_sum = tg::recipes::scalar_value(extra, "log_sum");
    log_n = static_cast<int64_t>(tg::recipes::scalar_value(extra, "log_n"));
  }

  fmt::print("word_lm: {}-layer LSTM, hidden {} | vocabulary {} | {:.2f}M parameters\n", cfg.layers, cfg.hidden, V,
             static_cast<double>(model->num_parameters()) / 1e6);
  fmt::print("data: {}: {} train / {} valid / {} test words ({} batches of {} x {} per epoch)\n", corpus.dir,
             corpus.train.size(), corpus.valid.size(), corpus.test.size(), per_epoch, cfg.batch, cfg.seq);
  fmt::print("training {} steps ({:.2f} epochs) on {} threads: SGD lr {} (x{} per epoch after epoch {}), clip {}{}\n",
             total, static_cast<double>(total) / per_epoch, tg::get_num_threads(), cfg.lr, cfg.lr_decay,
             cfg.decay_after, cfg.clip, resuming ? fmt::format(" | resumed at step {}", step) : "");
  std::fflush(stdout);

  tg::recipes::MetricsWriter metrics;
  if (!h.out_dir().empty()) metrics = tg::recipes::MetricsWriter(h.out_path("metrics.jsonl"), resuming ? step : -1);
  tg::recipes::Progress progress(total, 0, f.log_every);
  progress.start(step, elapsed_before);
  tg::data::PrefetchLoader loader(std::move(train_stream));

  auto save = [&] {
    TensorMap x{{"elapsed_s", tg::recipes::scalar_entry(progress.elapsed())},
                {"epoch_sum", tg::recipes::scalar_entry(epoch_sum)},
                {"epoch_words", tg::recipes::scalar_entry(static_cast<double>(epoch_words))},
                {"log_sum", tg::recipes::scalar_entry(log_sum)},
                {"log_n", tg::recipes::scalar_entry(static_cast<double>(log_n))}};
    tg::recipes::put_state(x, "data.", loader.state_dict());
    if (state.h.defined()) x["state.h"] = state.h;
    if (state.c.defined()) x["state.c"] = state.c;
    tg::recipes::save_run(h.out_dir(), *model, opt, step, x, corpus.tok.get());
  };
  // After each epoch (and at the end of a shorter --steps run): train, validation and test perplexity.
  auto report = [&](int64_t epoch) {
    const double train_ppl = epoch_words > 0 ? std::exp(epoch_sum / static_cast<double>(epoch_words)) : NAN;
    const double val_ppl = perplexity(*model, corpus.valid, cfg.batch, cfg.seq);
    const double test_ppl = perplexity(*model, corpus.test, cfg.batch, cfg.seq);
    progress.message(fmt::format("epoch {:>2} | step {:>6} | lr {:.4g} | train ppl {:.2f} | valid ppl {:.2f} | "
                                 "test ppl {:.2f} | {}", epoch, step, opt.param_groups()[0].lr, train_ppl, val_ppl,
                                 test_ppl, tg::recipes::format_duration(progress.elapsed())));
    metrics.write(step, {{"epoch", static_cast<double>(epoch)}, {"train_ppl", train_ppl},
                         {"val_loss", std::log(val_ppl)}, {"val_ppl", val_ppl}, {"test_ppl", test_ppl}},
                  progress.elapsed());
    progress.skip_interval();
    epoch_sum = 0;
    epoch_words = 0;
    return test_ppl;
  };

  double test_ppl = NAN;
  bool interrupted = false;
  while (step < total) {
    if (tg::recipes::Harness::interrupted() || (f.stop_after > 0 && step >= f.stop_after)) {
      interrupted = true;
      break;
    }
    const tg::data::Batch b = loader.next();
    if (b.index == 0) state = State{};  // a new epoch: every lane starts again from its beginning
    opt.param_groups()[0].lr = epoch_lr(cfg, b.epoch);
    const double lr = opt.param_groups()[0].lr;
    const double loss = train_step(*model, opt, b, state, cfg);
    TG_CHECK(std::isfinite(loss), "the loss is {} at step {}: try a lower --lr", loss, step + 1);
    ++step;
    epoch_sum += loss * static_cast<double>(b.target.numel());
    epoch_words += b.target.numel();
    log_sum += loss;
    ++log_n;
    progress.update(step, loss, lr, b.target.numel());
    if (step % 20 == 0) {
      metrics.write(step, {{"loss", log_sum / log_n}, {"lr", lr}, {"tokens_per_s", progress.tokens_per_s()}},
                    progress.elapsed());
      log_sum = 0;
      log_n = 0;
    }
    if (step % per_epoch == 0 || step == total) {
      test_ppl = report(b.epoch + 1);
      if (f.save) save();
    }
  }
  progress.finish();
  if (interrupted) {
    fmt::print("stopped at step {} of {}\n", step, total);
    if (f.save) save();
  } else {
    fmt::print("final: step {}, test perplexity {:.2f}, {} of training\n", step, test_ppl,
               tg::recipes::format_duration(progress.elapsed()));
  }
  if (f.save)
    fmt::print("saved {} (continue with --resume {})\n", h.out_path(tg::recipes::kCheckpointFile), h.out_dir());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::Harness h("word_lm", "word_lm: a word-level LSTM language model (Zaremba et al. 2014, small) on "
                         "WikiText-2 or, with --data DIR, Penn Treebank");
  Config cfg;
  CLI::App& app = h.app();
  app.add_option("--layers", cfg.layers, "LSTM layers")->check(CLI::PositiveNumber);
  app.add_option("--hidden", cfg.hidden, "hidden units per layer (and the embedding width)")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch", cfg.batch, "lanes per batch")->check(CLI::PositiveNumber);
  app.add_option("--seq", cfg.seq, "unrolled steps per batch (the BPTT length)")->check(CLI::PositiveNumber);
  app.add_option("--epochs", cfg.epochs, "passes over the training split (--steps overrides)")
      ->check(CLI::PositiveNumber);
  app.add_option("--lr", cfg.lr, "SGD learning rate, for the loss summed over the unrolled steps")
      ->check(CLI::PositiveNumber);
  app.add_option("--lr-decay", cfg.lr_decay, "lr factor per epoch after --decay-after")->check(CLI::Range(0.0, 1.0));
  app.add_option("--decay-after", cfg.decay_after, "epochs at the full learning rate")->check(CLI::NonNegativeNumber);
  app.add_option("--clip", cfg.clip, "gradient-norm clipping threshold")->check(CLI::PositiveNumber);
  app.add_option("--init-scale", cfg.init_scale, "weights start uniform in +-this")->check(CLI::PositiveNumber);
  return h.main(argc, argv, [&] { run(h, cfg); });
}
