// seq2seq: an LSTM encoder-decoder with attention (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015)
// learning to reverse digit strings or to add two integers ("123+45" -> "168", as Zaremba & Sutskever 2014's
// "Learning to Execute" addition). Teacher-forced training on fresh random batches, then exact-match accuracy on a
// held-out set, decoded greedily and with beam search. The task is solved when nearly every answer is exact; the
// comparison shows what the beam buys over greedy decoding (little, once the model is sure of itself).
//
//   seq2seq                                   # reversal of 1..8 digits, dot attention
//   seq2seq --task addition --max-digits 4 --out out/add
//   seq2seq --attention none                  # no attention: the whole input must squeeze through (h, c)
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "recipes/common/harness.h"
#include "recipes/common/task_loop.h"
#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;
using Vocab = tg::data::Seq2SeqVocab;

namespace {

struct Config {
  std::string task = "reverse";
  int64_t min_digits = 1, max_digits = 8;
  std::string attention = "dot";
  int64_t embed = 32, hidden = 128, layers = 1;
  bool reverse_source = false;
  int64_t batch = 64;
  double lr = 3e-3, clip = 1.0;
  int64_t eval_size = 512, beam_eval = 512, beam = 4;  // beam_eval = eval_size: the same examples for both
  tg::data::Seq2SeqOptions task_options() const {
    return {.task = task == "addition" ? tg::data::Seq2SeqTask::Addition : tg::data::Seq2SeqTask::Reverse,
            .min_digits = min_digits, .max_digits = max_digits};
  }
};

// Decoder inputs (<bos> + answer) and the scored targets (answer + <eos>, padding ignored) of a batch.
std::pair<Tensor, Tensor> teacher_forcing(const tg::data::Batch& b) {
  const int64_t U = b.target.size(1);
  Tensor out = b.target.slice(1, 1, U);
  return {b.target.slice(1, 0, U - 1), out.masked_fill(tg::eq(out, static_cast<double>(Vocab::kPad)), -100)};
}

// The answer of row i of a batch's target: the tokens after <bos>, up to and including <eos>.
std::vector<int64_t> answer(const std::vector<int64_t>& target, int64_t U, int64_t i, int64_t len) {
  return std::vector<int64_t>(target.begin() + i * U + 1, target.begin() + i * U + len);
}
// A decoded row up to and including its first <eos>.
std::vector<int64_t> until_eos(std::vector<int64_t> tokens) {
  auto it = std::find(tokens.begin(), tokens.end(), Vocab::kEos);
  if (it != tokens.end()) tokens.erase(it + 1, tokens.end());
  return tokens;
}

// Exact-match accuracy on held-out batches: greedy over all of them, beam search over the first beam_eval examples.
std::vector<tg::recipes::MetricsWriter::Field> evaluate(tg::nn::Seq2Seq& model, const std::vector<tg::data::Batch>& set,
                                                        const Config& cfg, int64_t max_len) {
  int64_t n = 0, greedy_ok = 0, beam_n = 0, beam_ok = 0;
  double loss = 0;
  for (const tg::data::Batch& b : set) {
    auto [tgt_in, tgt_out] = teacher_forcing(b);
    loss += F::cross_entropy(model.forward(b.input, tgt_in, b.input_lengths).reshape({-1, Vocab::kSize}),
                             tgt_out.reshape({-1})).item<double>();
    const int64_t B = b.input.size(0), U = b.target.size(1);
    const Tensor pred = model.greedy(b.input, max_len, b.input_lengths).contiguous();
    const int64_t P = pred.size(1);
    const std::vector<int64_t> p = pred.to_vector<int64_t>(), t = b.target.contiguous().to_vector<int64_t>();
    const std::vector<int64_t> tl = b.target_lengths.to_vector<int64_t>(), sl = b.input_lengths.to_vector<int64_t>();
    for (int64_t i = 0; i < B; ++i, ++n) {
      const std::vector<int64_t> want = answer(t, U, i, tl[i]);
      greedy_ok += until_eos(std::vector<int64_t>(p.begin() + i * P, p.begin() + (i + 1) * P)) == want;
      if (beam_n < cfg.beam_eval) {
        const Tensor src = b.input.select(0, i).slice(0, 0, sl[i]);
        beam_ok += until_eos(model.beam_search(src, cfg.beam, max_len)[0].tokens) == want;
        ++beam_n;
      }
    }
  }
  return {{"val_loss", loss / static_cast<double>(set.size())},
          {"greedy_accuracy", static_cast<double>(greedy_ok) / n},
          {"beam_accuracy", static_cast<double>(beam_ok) / std::max<int64_t>(1, beam_n)}};
}

void run(tg::recipes::Harness& h, const Config& cfg) {
  auto& f = h.flags();
  TG_CHECK(f.data.empty(), "--data {}: seq2seq makes its own data (see --task)", f.data);
  TG_CHECK(cfg.min_digits <= cfg.max_digits, "--min-digits {} is above --max-digits {}", cfg.min_digits,
           cfg.max_digits);
  tg::nn::Seq2Seq model({.src_vocab = Vocab::kSize, .tgt_vocab = Vocab::kSize, .embed = cfg.embed,
                         .hidden = cfg.hidden, .num_layers = cfg.layers, .attention = cfg.attention,
                         .reverse_source = cfg.reverse_source, .bos = Vocab::kBos, .eos = Vocab::kEos});
  tg::optim::Adam opt(model.parameters(), {.lr = cfg.lr});
  const tg::data::Seq2SeqOptions task = cfg.task_options();
  tg::data::TaskStream train([task, B = cfg.batch](tg::Generator& g) { return tg::data::seq2seq_digits(task, B, g); },
                             f.seed);
  // The held-out set comes from a generator of its own, so it is the same whatever the training run does.
  std::vector<tg::data::Batch> held_out;
  tg::Generator eval_gen(f.seed + 7919);
  for (int64_t left = cfg.eval_size; left > 0; left -= 128)
    held_out.push_back(tg::data::seq2seq_digits(task, std::min<int64_t>(128, left), eval_gen));
  const int64_t max_len = cfg.max_digits + 3;  // the longest answer (a carry digit) and <eos>, plus one spare

  const int64_t total = f.steps > 0 ? f.steps : 2000;
  // Digits per step, roughly: a reversal example averages (min + max) / 2 digits in and as many out.
  const double tokens_per_step = static_cast<double>(cfg.batch) * (cfg.min_digits + cfg.max_digits);
  auto train_step = [&](const tg::data::Batch& b) {
    auto [tgt_in, tgt_out] = teacher_forcing(b);
    Tensor loss = F::cross_entropy(model.forward(b.input, tgt_in, b.input_lengths).reshape({-1, Vocab::kSize}),
                                   tgt_out.reshape({-1}));
    opt.zero_grad();
    loss.backward();
    tg::optim::clip_grad_norm_(opt.parameters(), cfg.clip);
    opt.step();
    return loss.item<double>();
  };
  if (f.bench) {
    tg::recipes::run_bench("seq2seq", f.steps > 0 ? f.steps : 20, 3, tokens_per_step, [&] { train_step(train.next()); });
    return;
  }
  fmt::print("seq2seq: {} of {}..{} digits | LSTM {}x{}, embedding {}, attention {} | {:.2f}M parameters\n", cfg.task,
             cfg.min_digits, cfg.max_digits, cfg.layers, cfg.hidden, cfg.embed, cfg.attention,
             static_cast<double>(model.num_parameters()) / 1e6);
  fmt::print("training {} steps of batch {}: Adam lr {:.1e}, cosine to 0, clip {} | held out: {} examples (beam {} "
             "on the first {})\n", total, cfg.batch, cfg.lr, cfg.clip, cfg.eval_size, cfg.beam, cfg.beam_eval);
  tg::Generator example_gen(f.seed + 7919);
  const tg::data::Batch ex = tg::data::seq2seq_digits(task, 1, example_gen);
  fmt::print("example: {} -> {}\n", Vocab::to_string(ex.input.to_vector<int64_t>()),
             Vocab::to_string(ex.target.to_vector<int64_t>()));
  std::fflush(stdout);

  tg::optim::WarmupCosineLR sched(opt, std::min<int64_t>(100, total / 10), total, 0.0);
  tg::recipes::TaskLoop loop;
  loop.total_steps = total;
  loop.eval_every = f.eval_every > 0 ? f.eval_every : 500;
  loop.tokens_per_step = tokens_per_step;
  loop.schedule = &sched;
  loop.step = train_step;
  loop.evaluate = [&] { return evaluate(model, held_out, cfg, max_len); };
  const auto last = tg::recipes::run_task_loop(h, model, opt, train, loop);
  if (last.size() == 3)
    fmt::print("final: exact match greedy {:.1f}%, beam {} {:.1f}% (held-out loss {:.4f})\n", 100 * last[1].second,
               cfg.beam, 100 * last[2].second, last[0].second);
  // A few held-out examples, decoded greedily.
  const tg::data::Batch& b = held_out.front();
  const Tensor pred = model.greedy(b.input.slice(0, 0, 4), max_len, b.input_lengths.slice(0, 0, 4));
  for (int64_t i = 0; i < 4; ++i)
    fmt::print("  {} -> {}\n", Vocab::to_string(b.input.select(0, i).to_vector<int64_t>()),
               Vocab::to_string(until_eos(pred.select(0, i).contiguous().to_vector<int64_t>())));
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::Harness h("seq2seq", "seq2seq: an LSTM encoder-decoder with attention on digit reversal or addition");
  Config cfg;
  CLI::App& app = h.app();
  app.add_option("--task", cfg.task, "what to learn")->check(CLI::IsMember({"reverse", "addition"}));
  app.add_option("--min-digits", cfg.min_digits, "shortest number")->check(CLI::Range(1, 18));
  app.add_option("--max-digits", cfg.max_digits, "longest number")->check(CLI::Range(1, 18));
  app.add_option("--attention", cfg.attention, "score over the encoder states (none: no attention)")
      ->check(CLI::IsMember({"none", "dot", "general", "additive"}));
  app.add_flag("--reverse-source", cfg.reverse_source, "read the source backwards (Sutskever et al.)");
  app.add_option("--embed", cfg.embed, "token embedding width")->check(CLI::PositiveNumber);
  app.add_option("--hidden", cfg.hidden, "LSTM hidden units")->check(CLI::PositiveNumber);
  app.add_option("--layers", cfg.layers, "LSTM layers (encoder and decoder)")->check(CLI::PositiveNumber);
  app.add_option("--batch", cfg.batch, "examples per step")->check(CLI::PositiveNumber);
  app.add_option("--lr", cfg.lr, "peak learning rate (Adam)")->check(CLI::PositiveNumber);
  app.add_option("--clip", cfg.clip, "gradient-norm clipping threshold")->check(CLI::PositiveNumber);
  app.add_option("--eval-size", cfg.eval_size, "held-out examples (greedy)")->check(CLI::PositiveNumber);
  app.add_option("--beam-eval", cfg.beam_eval, "held-out examples also decoded by beam search")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--beam", cfg.beam, "beam width")->check(CLI::PositiveNumber);
  return h.main(argc, argv, [&] { run(h, cfg); });
}
