// gpt: a character-level GPT (decoder-only transformer; Radford et al. 2018/2019, as in Karpathy's nanoGPT
// shakespeare_char) on Tiny Shakespeare, then a text sample decoded through the KV cache.
// Default: 4 layers, 4 heads, width 128, context 64, GELU MLP, LayerNorm, learned positions; --norm rms,
// --mlp swiglu, --pos rope|sinusoidal, --kv-heads, --tie switch the variants. Random windows of the training split,
// Adam with linear warm-up and cosine decay, gradient-norm clipping, 2,000 steps; the target is a validation loss
// below 1.78 nats per character.
//
//   gpt                                       # train with the defaults, print progress, a sample at the end
//   gpt --pos rope --norm rms --mlp swiglu --out out/gpt-llama --save
//   gpt --resume out/gpt-llama --steps 3000   # continue (bit-identically) and extend the run
//   gpt --bench                               # one JSON line: tokens/s, ms/step, peak memory
#include <chrono>
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

const std::vector<std::string> kNorms = {"layer", "rms"}, kMlps = {"gelu", "swiglu"},
                               kPos = {"learned", "sinusoidal", "rope"};

int64_t index_of(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) - v.begin();
}

struct Config {
  int64_t layers = 4, heads = 4, kv_heads = 0, width = 128, context = 64, batch = 32, steps = 2000;
  std::string norm = "layer", mlp = "gelu", pos = "learned";
  bool tie = false;
  double lr = 2e-3, min_lr = 1e-4, clip = 1.0, dropout = 0.0, val_fraction = 0.1;
  int64_t warmup = 100;
  int64_t sample_chars = 500, top_k = 0;
  double temperature = 0.8;
  std::string prompt = "\n";

  tg::nn::GPTConfig gpt(int64_t vocab) const {
    return {.vocab_size = vocab, .context = context, .d_model = width, .n_layer = layers, .n_head = heads,
            .n_kv_head = kv_heads, .norm = norm, .mlp = mlp, .pos = pos, .tie_weights = tie, .dropout = dropout};
  }
  Tensor as_tensor() const {  // what a resumed run must match
    return tg::tensor<int64_t>({layers, heads, kv_heads, width, context, index_of(kNorms, norm), index_of(kMlps, mlp),
                                index_of(kPos, pos), tie});
  }
};

Tensor lm_loss(const Tensor& logits, const Tensor& target, const std::string& reduction = "mean") {
  const int64_t V = logits.size(-1);
  return F::cross_entropy(logits.reshape({-1, V}), target.reshape({-1}), -100, 0.0, reduction);
}

// Validation loss in nats per character over every whole window of the split, in order, 128 windows a batch.
double evaluate(tg::nn::GPT& model, const std::vector<int64_t>& val, int64_t context) {
  tg::NoGradGuard no_grad;
  model.eval();
  const int64_t windows = (static_cast<int64_t>(val.size()) - 1) / context;
  const int64_t bs = std::max<int64_t>(1, std::min<int64_t>(128, windows));
  tg::data::LMWindowStream stream(val, {.batch_size = bs, .seq_len = context, .shuffle = false, .random_offset = false});
  double sum = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < stream.batches_per_epoch(); ++k) {
    tg::data::Batch b = stream.next();
    sum += lm_loss(model.forward(b.input), b.target, "sum").item<double>();
    count += b.target.numel();
  }
  model.train();
  return count ? sum / static_cast<double>(count) : NAN;
}

std::string sample(tg::nn::GPT& model, const tg::data::Tokenizer& tok, const Config& cfg, uint64_t seed) {
  tg::Generator gen(seed);
  std::vector<int64_t> ids = tok.encode(cfg.prompt);
  Tensor prompt = tg::tensor<int64_t>(ids, {1, static_cast<int64_t>(ids.size())});
  tg::nn::SamplingOptions so{.greedy = cfg.temperature <= 0, .temperature = cfg.temperature, .top_k = cfg.top_k};
  Tensor seq = model.generate(prompt, cfg.sample_chars, so, gen);
  std::string out;
  for (int64_t id : seq.reshape({-1}).to_vector<int64_t>()) out += tok.token_text(id);
  return out.substr(cfg.prompt.size());
}

std::string default_corpus() {
  const std::string built_in = std::string(TG_CORPUS_DIR) + "/tinyshakespeare.txt";
  return std::filesystem::exists(built_in) ? built_in : "data/corpora/tinyshakespeare.txt";
}

double train_step(tg::nn::GPT& model, tg::optim::Optimizer& opt, const tg::data::Batch& b, const Config& cfg) {
  Tensor loss = lm_loss(model.forward(b.input), b.target);
  opt.zero_grad();
  loss.backward();
  if (cfg.clip > 0) tg::optim::clip_grad_norm_(opt.parameters(), cfg.clip);
  opt.step();
  return loss.item<double>();
}

void bench(const Config& cfg, int64_t steps) {
  const int64_t V = 65;  // Tiny Shakespeare's alphabet; random tokens, since --bench reads no files
  tg::nn::GPT model(cfg.gpt(V));
  tg::optim::Adam opt(model.parameters(), {.lr = cfg.lr});
  tg::data::Batch b;
  b.input = tg::randint(0, V, {cfg.batch, cfg.context});
  b.target = tg::randint(0, V, {cfg.batch, cfg.context});
  tg::recipes::run_bench("gpt", steps, 3, static_cast<double>(cfg.batch * cfg.context),
                         [&] { train_step(model, opt, b, cfg); });
}

void run(tg::recipes::Harness& h, Config& cfg) {
  auto& f = h.flags();
  if (f.bench) return bench(cfg, f.steps > 0 ? f.steps : 20);
  const bool resuming = !f.resume.empty();
  const int64_t total = f.steps > 0 ? f.steps : cfg.steps;

  const std::string path = f.data.empty() ? default_corpus() : f.data;
  const std::string text = tg::data::read_text_file(path);
  const std::string ckpt = resuming ? tg::recipes::resolve_checkpoint(f.resume) : "";
  std::unique_ptr<tg::data::Tokenizer> tok;
  if (resuming) tok = tg::recipes::load_run_tokenizer(ckpt);
  else tok = std::make_unique<tg::data::CharTokenizer>(tg::data::CharTokenizer::build(text));
  try {
    if (cfg.sample_chars > 0) tok->encode(cfg.prompt);
  } catch (const tg::Error& e) {
    TG_ERROR("--prompt: {}", e.what());
  }
  const tg::data::Split split = tg::data::split_tokens(tok->encode(text), cfg.val_fraction);
  TG_CHECK(static_cast<int64_t>(split.val.size()) > cfg.context,
           "--val-fraction {}: the validation split of {} is shorter than one context", cfg.val_fraction, path);

  const Tensor model_config = cfg.as_tensor();
  if (resuming) {
    const TensorMap extra = tg::recipes::read_run_extras(ckpt);
    auto it = extra.find("model_config");
    TG_CHECK(it != extra.end(), "--resume {}: not a gpt checkpoint (it has no model_config entry)", ckpt);
    TG_CHECK(tg::equal(it->second, model_config),
             "--resume {}: the checkpoint holds another model; pass the flags it was trained with", ckpt);
  }
  auto model = std::make_shared<tg::nn::GPT>(cfg.gpt(tok->vocab_size()));
  tg::optim::Adam opt(model->parameters(), {.lr = cfg.lr});
  auto stream = std::make_unique<tg::data::LMWindowStream>(
      split.train, tg::data::WindowOptions{.batch_size = cfg.batch, .seq_len = cfg.context, .seed = f.seed});

  int64_t step = 0;
  double elapsed_before = 0, loss_sum = 0;
  int64_t loss_n = 0;
  TensorMap extra;
  if (resuming) {
    step = tg::recipes::load_run(ckpt, *model, opt, &extra);
    stream->load_state_dict(tg::recipes::take_state(extra, "data."));
    elapsed_before = tg::recipes::scalar_value(extra, "elapsed_s");
    loss_sum = tg::recipes::scalar_value(extra, "loss_sum");
    loss_n = static_cast<int64_t>(tg::recipes::scalar_value(extra, "loss_n"));
  }
  const int64_t warmup = std::min(cfg.warmup, total / 5);
  tg::optim::WarmupCosineLR sched(opt, warmup, total, cfg.min_lr);
  if (resuming) sched.load_state_dict(tg::recipes::take_state(extra, "sched."));

  fmt::print("gpt: {} layers, {} heads ({} kv), width {}, context {}, {} norm, {} MLP, {} positions{} | {} characters | "
             "{:.2f}M parameters\n",
             cfg.layers, cfg.heads, cfg.kv_heads ? cfg.kv_heads : cfg.heads, cfg.width, cfg.context, cfg.norm, cfg.mlp,
             cfg.pos, cfg.tie ? ", tied head" : "", tok->vocab_size(),
             static_cast<double>(model->num_parameters()) / 1e6);
  fmt::print("data: {}: {} train / {} validation characters, batches of {} random windows\n", path,
             split.train.size(), split.val.size(), cfg.batch);
  const int threads = tg::get_num_threads();
  fmt::print("training {} steps on {} thread{}: Adam lr {:.1e}, warm-up {}, cosine to {:.1e}, clip {:.1f}{}\n", total,
             threads, threads == 1 ? "" : "s", cfg.lr, warmup, cfg.min_lr, cfg.clip,
             resuming ? fmt::format(" | resumed at step {}", step) : "");
  std::fflush(stdout);

  tg::recipes::MetricsWriter metrics;
  if (!h.out_dir().empty()) metrics = tg::recipes::MetricsWriter(h.out_path("metrics.jsonl"), resuming ? step : -1);
  tg::recipes::Progress progress(total, 0, f.log_every);
  progress.start(step, elapsed_before);
  tg::data::PrefetchLoader loader(std::move(stream));
  const int64_t eval_every = f.eval_every > 0 ? f.eval_every : 250;
  double val_loss = NAN;
  int64_t evaluated_at = -1;

  auto validate = [&] {
    val_loss = evaluate(*model, split.val, cfg.context);
    evaluated_at = step;
    progress.message(fmt::format("step {:>5} | val loss {:.4f} | val ppl {:.2f}", step, val_loss, std::exp(val_loss)));
    metrics.write(step, {{"val_loss", val_loss}, {"val_ppl", std::exp(val_loss)}}, progress.elapsed());
    progress.skip_interval();
  };
  auto save = [&] {
    TensorMap x{{"model_config", model_config},
                {"elapsed_s", tg::recipes::scalar_entry(progress.elapsed())},
                {"loss_sum", tg::recipes::scalar_entry(loss_sum)},
                {"loss_n", tg::recipes::scalar_entry(static_cast<double>(loss_n))}};
    tg::recipes::put_state(x, "data.", loader.state_dict());
    tg::recipes::put_state(x, "sched.", sched.state_dict());
    tg::recipes::save_run(h.out_dir(), *model, opt, step, x, tok.get());
  };

  if (!resuming) validate();
  bool interrupted = false;
  while (step < total) {
    if (tg::recipes::Harness::interrupted() || (f.stop_after > 0 && step >= f.stop_after)) {
      interrupted = true;
      break;
    }
    const tg::data::Batch b = loader.next();
    const double lr = opt.param_groups()[0].lr;
    const double loss = train_step(*model, opt, b, cfg);
    TG_CHECK(std::isfinite(loss), "the loss is {} at step {}: try a lower --lr", loss, step + 1);
    sched.step();
    ++step;
    loss_sum += loss;
    ++loss_n;
    progress.update(step, loss, lr, b.target.numel());
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
  if (interrupted) {
    fmt::print("stopped at step {} of {}\n", step, total);
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
  tg::recipes::Harness h("gpt", "gpt: a character-level GPT on Tiny Shakespeare");
  Config cfg;
  CLI::App& app = h.app();
  app.add_option("--layers", cfg.layers, "transformer blocks")->check(CLI::PositiveNumber);
  app.add_option("--heads", cfg.heads, "attention heads")->check(CLI::PositiveNumber);
  app.add_option("--kv-heads", cfg.kv_heads, "key/value heads (grouped-query attention; 0: --heads)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--width", cfg.width, "model width d_model")->check(CLI::PositiveNumber);
  app.add_option("--context", cfg.context, "context length (characters per window)")->check(CLI::PositiveNumber);
  app.add_option("--norm", cfg.norm, "normalisation")->check(CLI::IsMember(kNorms));
  app.add_option("--mlp", cfg.mlp, "feed-forward")->check(CLI::IsMember(kMlps));
  app.add_option("--pos", cfg.pos, "position encoding")->check(CLI::IsMember(kPos));
  app.add_flag("--tie", cfg.tie, "tie the output head to the token embedding");
  app.add_option("--batch", cfg.batch, "windows per batch")->check(CLI::PositiveNumber);
  app.add_option("--lr", cfg.lr, "peak learning rate (Adam)")->check(CLI::PositiveNumber);
  app.add_option("--min-lr", cfg.min_lr, "learning rate at the end of the cosine decay")->check(CLI::NonNegativeNumber);
  app.add_option("--warmup", cfg.warmup, "linear warm-up steps")->check(CLI::NonNegativeNumber);
  app.add_option("--clip", cfg.clip, "gradient-norm clipping threshold (0: none)")->check(CLI::NonNegativeNumber);
  app.add_option("--dropout", cfg.dropout, "dropout (attention weights, residual branches)")->check(CLI::Range(0.0, 0.9));
  app.add_option("--val-fraction", cfg.val_fraction, "the end of the corpus kept for validation")
      ->check(CLI::Range(0.001, 0.5));
  app.add_option("--sample", cfg.sample_chars, "characters to sample at the end (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", cfg.temperature, "sampling temperature (0: greedy)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", cfg.top_k, "sample among the k likeliest characters (0: all)")->check(CLI::NonNegativeNumber);
  app.add_option("--prompt", cfg.prompt, "text the sample continues (default: a newline)")
      ->default_str("")
      ->check([](const std::string& p) { return p.empty() ? std::string("the prompt must not be empty") : ""; });
  return h.main(argc, argv, [&] {
    TG_CHECK(cfg.width % cfg.heads == 0, "--width {} must be a multiple of --heads {}", cfg.width, cfg.heads);
    TG_CHECK(cfg.kv_heads == 0 || cfg.heads % cfg.kv_heads == 0, "--heads {} must be a multiple of --kv-heads {}",
             cfg.heads, cfg.kv_heads);
    run(h, cfg);
  });
}
