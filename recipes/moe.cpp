// moe: a character-level GPT on Tiny Shakespeare whose feed-forward blocks are mixtures of experts (Switch
// Transformer, Fedus et al. 2021; GShard top-2), against the dense GPT with the same active parameters (--dense:
// every MoE block becomes one MLP of hidden top_k * expert_hidden, which is what one token runs through in the
// MoE). The training loss adds the load-balancing loss (--aux-weight) and the router z-loss (--z-weight), averaged
// over the MoE layers; the metrics log both, the dropped fraction and the routers' load. --dts-steps anneals
// EvoMoE's dense-to-sparse gate over the first steps. Adam with warm-up and cosine decay, gradient clipping.
//
//   moe --minutes 2 --out out/moe                # 8 experts, top-1, MoE in every other layer
//   moe --minutes 2 --out out/dense --dense      # the dense baseline at equal active parameters
//   moe --top-k 2 --capacity-factor 1.0 --dts-steps 200
//   moe --bench                                  # one JSON line: tokens/s, ms/step, peak memory
#include <chrono>
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

struct Config {
  int64_t layers = 4, d_model = 128, heads = 4, seq = 128, batch = 16;
  int64_t experts = 8, top_k = 1, expert_hidden = 512, moe_every = 2;  // MoE in layers 1, 3, ... (as Switch)
  double capacity_factor = 1.25, eval_capacity_factor = 2.0;
  double aux_weight = 1e-2, z_weight = 1e-3;
  int64_t dts_steps = 0;  // dense-to-sparse: temperature 2.0 -> 0.3 over these steps, then plain top-k
  bool dense = false;
  double lr = 2e-3, min_lr = 1e-4, clip = 1.0, val_fraction = 0.1;
  int64_t warmup = 100, sample_chars = 300;
  bool is_moe_layer(int64_t l) const { return (l + 1) % moe_every == 0; }
};

// The GPT with its MoE blocks kept at hand for their losses and statistics.
struct Model {
  std::shared_ptr<tg::nn::GPT> gpt;
  std::vector<std::shared_ptr<tg::nn::MoE>> moes;  // empty for --dense
  int64_t active_parameters = 0;
};

Model build(const Config& cfg, int64_t vocab) {
  Model m;
  tg::nn::GPTConfig g;
  g.vocab_size = vocab;
  g.context = cfg.seq;
  g.d_model = cfg.d_model;
  g.n_layer = cfg.layers;
  g.n_head = cfg.heads;
  g.ffn_factory = [&cfg, &m](int layer) -> std::shared_ptr<tg::nn::UnaryModule> {
    const int64_t d = cfg.d_model;
    if (!cfg.is_moe_layer(layer)) return std::make_shared<tg::nn::MLP>(d, 4 * d);
    if (cfg.dense) return std::make_shared<tg::nn::MLP>(d, cfg.top_k * cfg.expert_hidden);
    auto moe = std::make_shared<tg::nn::MoE>(tg::nn::MoEOptions{
        .d_model = d, .d_hidden = cfg.expert_hidden, .n_experts = cfg.experts, .top_k = cfg.top_k,
        .capacity_factor = cfg.capacity_factor, .eval_capacity_factor = cfg.eval_capacity_factor});
    m.moes.push_back(moe);
    return moe;
  };
  m.gpt = std::make_shared<tg::nn::GPT>(g);
  m.gpt->config.ffn_factory = nullptr;  // it refers to this function's locals
  m.active_parameters = m.gpt->num_parameters();
  for (auto& moe : m.moes) {  // a token runs through top_k of the experts
    const int64_t per_expert = moe->experts->at<tg::nn::Sequential>(0)->num_parameters();
    m.active_parameters -= (cfg.experts - cfg.top_k) * per_expert;
  }
  return m;
}

// The routers' regularisers and statistics of the last forward, averaged over the MoE layers.
struct RouterSummary {
  Tensor aux, z;  // differentiable; undefined without MoE layers
  double dropped = 0, max_load = 0;  // max_load: the busiest expert's tokens / the mean, over the layers
  std::vector<double> load;          // the first MoE layer's share of tokens per expert
};

RouterSummary summarize(const Model& m) {
  RouterSummary s;
  if (m.moes.empty()) return s;
  const double n = static_cast<double>(m.moes.size());
  for (auto& moe : m.moes) {
    s.aux = s.aux.defined() ? s.aux + moe->aux_loss() : moe->aux_loss();
    s.z = s.z.defined() ? s.z + moe->z_loss() : moe->z_loss();
    const auto& st = moe->stats();
    s.dropped += st.dropped_fraction / n;
    double total = 0, top = 0;
    for (int64_t c : st.tokens_per_expert) {
      total += static_cast<double>(c);
      top = std::max(top, static_cast<double>(c));
    }
    if (total > 0) s.max_load = std::max(s.max_load, top / (total / static_cast<double>(st.tokens_per_expert.size())));
  }
  s.aux = s.aux / n;
  s.z = s.z / n;
  const auto& first = m.moes[0]->stats().tokens_per_expert;
  double total = 0;
  for (int64_t c : first) total += static_cast<double>(c);
  for (int64_t c : first) s.load.push_back(total > 0 ? static_cast<double>(c) / total : 0.0);
  return s;
}

Tensor lm_loss(const Tensor& logits, const Tensor& target, const std::string& reduction = "mean") {
  return F::cross_entropy(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}), -100, 0.0, reduction);
}

// Validation loss in nats per character over the whole split, in windows of seq (eval mode: the eval capacity).
double evaluate(Model& m, const std::vector<int64_t>& val, int64_t seq) {
  tg::NoGradGuard no_grad;
  m.gpt->eval();
  const int64_t lanes = std::max<int64_t>(1, std::min<int64_t>(64, (static_cast<int64_t>(val.size()) - 1) / seq));
  tg::data::LMLaneStream stream(val, {.batch_size = lanes, .seq_len = seq, .drop_last = false});
  double sum = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < stream.batches_per_epoch(); ++k) {
    tg::data::Batch b = stream.next();
    sum += lm_loss(m.gpt->forward(b.input), b.target, "sum").item<double>();
    count += b.target.numel();
  }
  m.gpt->train();
  return sum / static_cast<double>(count);
}

std::string default_corpus() {
  const std::string built_in = std::string(TG_CORPUS_DIR) + "/tinyshakespeare.txt";
  return std::filesystem::exists(built_in) ? built_in : "data/corpora/tinyshakespeare.txt";
}

// The dense-to-sparse gate's temperature at a step (0: off, plain top-k).
double gate_temperature(const Config& cfg, int64_t step) {
  if (cfg.dts_steps <= 0 || step >= cfg.dts_steps) return 0.0;
  return F::dts_temperature(step, cfg.dts_steps, 2.0, 0.3);
}

struct StepResult {
  double loss, aux, z;
  RouterSummary routers;
};

StepResult train_step(Model& m, tg::optim::Optimizer& opt, const tg::data::Batch& b, const Config& cfg,
                      int64_t step) {
  for (auto& moe : m.moes) moe->set_gate_temperature(gate_temperature(cfg, step));
  Tensor ce = lm_loss(m.gpt->forward(b.input), b.target);
  RouterSummary r = summarize(m);
  Tensor loss = ce;
  if (r.aux.defined()) loss = loss + r.aux * cfg.aux_weight + r.z * cfg.z_weight;
  opt.zero_grad();
  loss.backward();
  tg::optim::clip_grad_norm_(opt.parameters(), cfg.clip);
  opt.step();
  return {ce.item<double>(), r.aux.defined() ? r.aux.item<double>() : 0.0, r.z.defined() ? r.z.item<double>() : 0.0,
          r};
}

// The flags that shape the model, stored in the checkpoint so that --resume rebuilds the same one.
Tensor model_config(const Config& c) {
  return tg::tensor<int64_t>({c.layers, c.d_model, c.heads, c.seq, c.experts, c.top_k, c.expert_hidden, c.moe_every,
                              c.dense ? 1 : 0});
}

void check_model_config(const std::string& ckpt, const Tensor& mine) {
  const TensorMap extra = tg::recipes::read_run_extras(ckpt);
  auto it = extra.find("model_config");
  TG_CHECK(it != extra.end() && it->second.dtype() == tg::kInt64 && it->second.numel() == mine.numel(),
           "--resume {}: not a moe checkpoint (it has no model_config entry)", ckpt);
  const std::vector<int64_t> c = it->second.to_vector<int64_t>();
  TG_CHECK(tg::equal(it->second, mine),
           "--resume {}: the checkpoint holds another model; resume it with --layers {} --d-model {} --heads {} --seq "
           "{} --experts {} --top-k {} --expert-hidden {} --moe-every {}{}",
           ckpt, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8] ? " --dense" : "");
}

void bench(const Config& cfg, int64_t steps) {
  const int64_t V = 65;  // Tiny Shakespeare's alphabet; random tokens, since --bench reads no files
  Model m = build(cfg, V);
  tg::optim::Adam opt(m.gpt->parameters(), {.lr = cfg.lr});
  tg::data::Batch b;
  b.input = tg::randint(0, V, {cfg.batch, cfg.seq});
  b.target = tg::randint(0, V, {cfg.batch, cfg.seq});
  tg::recipes::run_bench("moe", steps, 3, static_cast<double>(cfg.batch * cfg.seq),
                         [&] { train_step(m, opt, b, cfg, 0); });
}

void run(tg::recipes::Harness& h, Config& cfg) {
  auto& f = h.flags();
  TG_CHECK(cfg.d_model % cfg.heads == 0, "--d-model {} must be a multiple of --heads {}", cfg.d_model, cfg.heads);
  TG_CHECK(cfg.top_k <= cfg.experts, "--top-k {} must be at most --experts {}", cfg.top_k, cfg.experts);
  TG_CHECK(cfg.moe_every <= cfg.layers, "--moe-every {} leaves no MoE layer among {} layers", cfg.moe_every,
           cfg.layers);
  if (f.bench) return bench(cfg, f.steps > 0 ? f.steps : 10);
  const bool resuming = !f.resume.empty();
  if (f.steps > 0 && h.app().count("--minutes") == 0) f.minutes = 0;  // --steps alone means exactly that many

  // ---- data
  const std::string path = f.data.empty() ? default_corpus() : f.data;
  const std::string text = tg::data::read_text_file(path);
  const std::string ckpt = resuming ? tg::recipes::resolve_checkpoint(f.resume) : "";
  std::unique_ptr<tg::data::Tokenizer> tok;
  if (resuming) tok = tg::recipes::load_run_tokenizer(ckpt);
  else tok = std::make_unique<tg::data::CharTokenizer>(tg::data::CharTokenizer::build(text));
  const tg::data::Split split = tg::data::split_tokens(tok->encode(text), cfg.val_fraction);
  TG_CHECK(static_cast<int64_t>(split.val.size()) > cfg.seq, "--val-fraction {}: the validation split of {} is "
           "shorter than one window of --seq {}", cfg.val_fraction, path, cfg.seq);

  // ---- model, optimizer, schedule
  const Tensor mcfg = model_config(cfg);
  if (resuming) check_model_config(ckpt, mcfg);
  Model m = build(cfg, tok->vocab_size());
  tg::optim::Adam opt(m.gpt->parameters(), {.lr = cfg.lr});
  auto train_stream = std::make_unique<tg::data::LMLaneStream>(split.train, tg::data::LaneOptions{cfg.batch, cfg.seq});
  const int64_t per_epoch = train_stream->batches_per_epoch();
  int64_t step = 0, known_total = 0;
  double elapsed_before = 0;
  TensorMap extra;
  if (resuming) {
    step = tg::recipes::load_run(ckpt, *m.gpt, opt, &extra);
    train_stream->load_state_dict(tg::recipes::take_state(extra, "data."));
    known_total = static_cast<int64_t>(tg::recipes::scalar_value(extra, "total_steps"));
    elapsed_before = tg::recipes::scalar_value(extra, "elapsed_s");
  }
  tg::recipes::StepBudget budget(f.steps, f.minutes * 60, f.steps > 0 ? 0 : known_total);
  auto make_schedule = [&](int64_t total) {
    return std::make_unique<tg::optim::WarmupCosineLR>(opt, std::min(cfg.warmup, total / 5), total, cfg.min_lr);
  };
  auto sched = make_schedule(budget.schedule_length());
  if (resuming) sched->load_state_dict(tg::recipes::take_state(extra, "sched."));

  // ---- what this run is
  const int64_t n_moe = static_cast<int64_t>(m.moes.size());
  if (cfg.dense)
    fmt::print("moe: dense baseline, {}-layer GPT d {} heads {}: MLP hidden {} in layers", cfg.layers, cfg.d_model,
               cfg.heads, cfg.top_k * cfg.expert_hidden);
  else
    fmt::print("moe: {}-layer GPT d {} heads {}: {} experts (hidden {}), top-{}, capacity factor {} in layers",
               cfg.layers, cfg.d_model, cfg.heads, cfg.experts, cfg.expert_hidden, cfg.top_k, cfg.capacity_factor);
  for (int64_t l = 0; l < cfg.layers; ++l)
    if (cfg.is_moe_layer(l)) fmt::print(" {}", l);
  fmt::print(" | {} parameters, {} active per token\n", m.gpt->num_parameters(), m.active_parameters);
  fmt::print("data: {}: {} train / {} validation characters ({} batches of {} x {} per epoch)\n", path,
             split.train.size(), split.val.size(), per_epoch, cfg.batch, cfg.seq);
  const int threads = tg::get_num_threads();
  const std::string length = budget.by_time() ? "for " + tg::recipes::format_duration(f.minutes * 60)
                                              : fmt::format("{} steps", f.steps);
  fmt::print("training {} on {} thread{}: Adam lr {:.1e}, cosine to {:.1e}, clip {:.1f}, aux {:.0e}, z {:.0e}{}{}\n",
             length, threads, threads == 1 ? "" : "s", cfg.lr, cfg.min_lr, cfg.clip, cfg.aux_weight, cfg.z_weight,
             cfg.dts_steps > 0 ? fmt::format(", dense-to-sparse over {} steps", cfg.dts_steps) : "",
             resuming ? fmt::format(" | resumed at step {}", step) : "");
  std::fflush(stdout);

  tg::recipes::MetricsWriter metrics;
  if (!h.out_dir().empty()) metrics = tg::recipes::MetricsWriter(h.out_path("metrics.jsonl"), resuming ? step : -1);
  tg::recipes::Progress progress(budget.total(), f.minutes * 60, f.log_every);
  progress.start(step, elapsed_before);
  tg::data::PrefetchLoader loader(std::move(train_stream));
  const int64_t eval_every = f.eval_every > 0 ? f.eval_every : 200;
  double eval_seconds = NAN, val_loss = NAN;
  int64_t evaluated_at = -1;
  auto validate = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    val_loss = evaluate(m, split.val, cfg.seq);
    eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    evaluated_at = step;
    progress.message(fmt::format("step {:>5} | val loss {:.4f}", step, val_loss));
    metrics.write(step, {{"val_loss", val_loss}}, progress.elapsed());
    progress.skip_interval();
  };
  auto save = [&] {
    TensorMap x{{"model_config", mcfg},
                {"total_steps", tg::recipes::scalar_entry(static_cast<double>(budget.total()))},
                {"elapsed_s", tg::recipes::scalar_entry(progress.elapsed())}};
    tg::recipes::put_state(x, "data.", loader.state_dict());
    tg::recipes::put_state(x, "sched.", sched->state_dict());
    tg::recipes::save_run(h.out_dir(), *m.gpt, opt, step, x, tok.get());
  };

  if (!resuming) validate();
  bool interrupted = false;
  while (!budget.done(step, progress.elapsed())) {
    if (tg::recipes::Harness::interrupted() || (f.stop_after > 0 && step >= f.stop_after)) {
      interrupted = true;
      break;
    }
    const tg::data::Batch b = loader.next();
    const double lr = opt.param_groups()[0].lr;
    const StepResult r = train_step(m, opt, b, cfg, step);
    TG_CHECK(std::isfinite(r.loss), "the loss is {} at step {}: try a lower --lr", r.loss, step + 1);
    sched->step();
    ++step;
    progress.update(step, r.loss, lr, b.target.numel());
    if (budget.observe(step, progress.elapsed(), progress.seconds_per_step(), eval_seconds / eval_every)) {
      const TensorMap st = sched->state_dict();
      sched = make_schedule(budget.total());
      sched->load_state_dict(st);
      progress.set_total(budget.total());
    }
    if (step % 10 == 0) {  // this step's figures (the routers' state is that of the last batch)
      std::vector<tg::recipes::MetricsWriter::Field> fields{
          {"loss", r.loss}, {"lr", lr}, {"tokens_per_s", progress.tokens_per_s()}};
      if (n_moe > 0) {
        fields.push_back({"aux_loss", r.aux});
        fields.push_back({"z_loss", r.z});
        fields.push_back({"dropped", r.routers.dropped});
        fields.push_back({"max_load", r.routers.max_load});
        for (size_t e = 0; e < r.routers.load.size(); ++e)
          fields.push_back({fmt::format("load_{}", e), r.routers.load[e]});
        if (cfg.dts_steps > 0) fields.push_back({"gate_temperature", gate_temperature(cfg, step - 1)});
      }
      metrics.write(step, fields, progress.elapsed());
    }
    if (step % eval_every == 0) validate();
    if (f.save_every > 0 && step % f.save_every == 0) save();
  }
  progress.finish();
  if (interrupted) {
    fmt::print("stopped at step {} of {}\n", step, budget.total());
  } else {
    if (evaluated_at != step) validate();
    fmt::print("final: step {}, validation loss {:.4f} nats/char, {} of training\n", step, val_loss,
               tg::recipes::format_duration(progress.elapsed()));
  }
  if (!m.moes.empty()) {
    for (size_t i = 0; i < m.moes.size(); ++i) {
      const auto& st = m.moes[i]->stats();
      fmt::print("router {}: tokens per expert {} (capacity {}), dropped {:.3f}\n", i, st.tokens_per_expert,
                 st.capacity, st.dropped_fraction);
    }
  }
  if (f.save) {
    save();
    fmt::print("saved {} (continue with --resume {})\n", h.out_path(tg::recipes::kCheckpointFile), h.out_dir());
  }
  if (cfg.sample_chars > 0 && !interrupted) {
    std::vector<int64_t> prompt = tok->encode("\n");
    tg::Generator gen(f.seed);
    Tensor ids = m.gpt->generate(tg::tensor<int64_t>(prompt, {1, static_cast<int64_t>(prompt.size())}),
                                 cfg.sample_chars, {.temperature = 0.8}, gen);
    std::string out;
    for (int64_t id : ids.reshape({-1}).to_vector<int64_t>()) out += tok->token_text(id);
    fmt::print("---- sample (temperature 0.80) ----\n{}\n----\n", out);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::CommonFlags defaults;
  defaults.minutes = 2;
  tg::recipes::Harness h("moe", "moe: a character-level GPT with mixture-of-experts feed-forward layers", defaults);
  Config cfg;
  CLI::App& app = h.app();
  app.add_flag("--dense", cfg.dense, "the dense baseline: an MLP of hidden top_k * expert_hidden instead of each MoE");
  app.add_option("--layers", cfg.layers, "transformer blocks")->check(CLI::PositiveNumber);
  app.add_option("--d-model", cfg.d_model, "model width")->check(CLI::PositiveNumber);
  app.add_option("--heads", cfg.heads, "attention heads")->check(CLI::PositiveNumber);
  app.add_option("--seq", cfg.seq, "context length (characters per window)")->check(CLI::PositiveNumber);
  app.add_option("--batch", cfg.batch, "windows per batch")->check(CLI::PositiveNumber);
  app.add_option("--experts", cfg.experts, "experts per MoE layer")->check(CLI::PositiveNumber);
  app.add_option("--top-k", cfg.top_k, "experts per token (1: Switch, 2: GShard)")->check(CLI::PositiveNumber);
  app.add_option("--expert-hidden", cfg.expert_hidden, "hidden units of each expert MLP")->check(CLI::PositiveNumber);
  app.add_option("--moe-every", cfg.moe_every, "an MoE block in every N-th layer (the others keep a 4d MLP)")
      ->check(CLI::PositiveNumber);
  app.add_option("--capacity-factor", cfg.capacity_factor, "expert capacity factor in training (<= 0: unlimited)");
  app.add_option("--eval-capacity-factor", cfg.eval_capacity_factor, "expert capacity factor in evaluation");
  app.add_option("--aux-weight", cfg.aux_weight, "weight of the load-balancing loss")->check(CLI::NonNegativeNumber);
  app.add_option("--z-weight", cfg.z_weight, "weight of the router z-loss")->check(CLI::NonNegativeNumber);
  app.add_option("--dts-steps", cfg.dts_steps, "dense-to-sparse gate annealed over the first N steps (0: off)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--lr", cfg.lr, "peak learning rate (Adam)")->check(CLI::PositiveNumber);
  app.add_option("--min-lr", cfg.min_lr, "learning rate at the end of the cosine decay")->check(CLI::NonNegativeNumber);
  app.add_option("--warmup", cfg.warmup, "linear warm-up steps")->check(CLI::NonNegativeNumber);
  app.add_option("--clip", cfg.clip, "gradient-norm clipping threshold")->check(CLI::PositiveNumber);
  app.add_option("--val-fraction", cfg.val_fraction, "the end of the corpus kept for validation")
      ->check(CLI::Range(0.001, 0.5));
  app.add_option("--sample", cfg.sample_chars, "characters to sample at the end (0: none)")
      ->check(CLI::NonNegativeNumber);
  return h.main(argc, argv, [&] { run(h, cfg); });
}
