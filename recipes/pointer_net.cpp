// pointer_net: a pointer network (Vinyals, Fortunato & Jaitly 2015) learning to sort numbers. The encoder LSTM reads
// n numbers uniform in [0, 1); at every step the decoder points, through additive attention, at the input position
// that comes next in sorted order. One network serves every length: it trains on lengths min..max (each batch one
// length) and is scored on lengths beyond them too. Reports, by length, the fraction of sequences sorted exactly
// (greedy decoding, and beam search on a subset) and the fraction of pointers that are right. As Vinyals et al.
// ("Order Matters", 2016) found, exact accuracy is high for short sequences and falls quickly with length.
//
//   pointer_net                               # lengths 5..10, scored on 5..12
//   pointer_net --min-length 4 --max-length 6 --eval-max-length 8 --out out/ptr
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "recipes/common/harness.h"
#include "recipes/common/task_loop.h"
#include "tapegrad.h"

namespace F = tg::nn::functional;
using tg::Tensor;

namespace {

struct Config {
  int64_t min_length = 5, max_length = 10, eval_max_length = 12;
  int64_t hidden = 128, batch = 128;
  double lr = 2e-3, clip = 2.0;
  int64_t eval_size = 500, beam_eval = 100, beam = 4;
};

// Pointer logits [B, n, n] for a sorting batch and the cross-entropy against the sorted order.
Tensor sorting_loss(tg::nn::PointerNet& net, const tg::data::Batch& b) {
  const int64_t n = b.input.size(1);
  Tensor u = net.forward(b.input.unsqueeze(-1), b.target);
  return F::cross_entropy(u.reshape({-1, n}), b.target.reshape({-1}));
}

// The accuracies at one length over a held-out batch: exact (the whole permutation right) and per pointer for
// greedy decoding; exact for beam search, and for greedy on the same subset (beam search is slow, so it scores
// only the first beam_eval sequences).
struct LengthScore {
  double exact = 0, pointer = 0, beam_exact = 0, greedy_subset = 0;
};
LengthScore score(tg::nn::PointerNet& net, const tg::data::Batch& b, const Config& cfg) {
  const int64_t B = b.input.size(0), n = b.input.size(1);
  const std::vector<int64_t> pred = net.greedy(b.input.unsqueeze(-1)).contiguous().to_vector<int64_t>();
  const std::vector<int64_t> want = b.target.contiguous().to_vector<int64_t>();
  const int64_t beams = std::min(B, cfg.beam_eval);
  int64_t exact = 0, pointers = 0, beam_ok = 0, subset_ok = 0;
  for (int64_t i = 0; i < B; ++i) {
    int64_t right = 0;
    for (int64_t j = 0; j < n; ++j) right += pred[i * n + j] == want[i * n + j];
    pointers += right;
    exact += right == n;
    if (i < beams) subset_ok += right == n;
  }
  for (int64_t i = 0; i < beams; ++i) {
    const std::vector<int64_t> best = net.beam_search(b.input.select(0, i).unsqueeze(-1), cfg.beam)[0].tokens;
    beam_ok += best == std::vector<int64_t>(want.begin() + i * n, want.begin() + (i + 1) * n);
  }
  return {static_cast<double>(exact) / B, static_cast<double>(pointers) / (B * n),
          beams > 0 ? static_cast<double>(beam_ok) / beams : 0.0,
          beams > 0 ? static_cast<double>(subset_ok) / beams : 0.0};
}

void run(tg::recipes::Harness& h, const Config& cfg) {
  auto& f = h.flags();
  TG_CHECK(f.data.empty(), "--data {}: pointer_net makes its own data (see --min-length, --max-length)", f.data);
  TG_CHECK(cfg.min_length <= cfg.max_length && cfg.max_length <= cfg.eval_max_length,
           "need --min-length <= --max-length <= --eval-max-length, got {}, {} and {}", cfg.min_length,
           cfg.max_length, cfg.eval_max_length);
  tg::nn::PointerNet net({.input_dim = 1, .hidden = cfg.hidden});
  tg::optim::Adam opt(net.parameters(), {.lr = cfg.lr});
  // Each batch draws its length, then its numbers, from the stream's generator.
  tg::data::TaskStream train(
      [lo = cfg.min_length, hi = cfg.max_length, B = cfg.batch](tg::Generator& g) {
        return tg::data::sorting({.length = tg::data::uniform_int(g, lo, hi)}, B, g);
      },
      f.seed);
  std::vector<tg::data::Batch> held_out;  // one batch per length, from a generator of its own
  tg::Generator eval_gen(f.seed + 7919);
  for (int64_t n = cfg.min_length; n <= cfg.eval_max_length; ++n)
    held_out.push_back(tg::data::sorting({.length = n}, cfg.eval_size, eval_gen));

  const int64_t total = f.steps > 0 ? f.steps : 2000;
  const double mean_length = 0.5 * static_cast<double>(cfg.min_length + cfg.max_length);
  auto train_step = [&](const tg::data::Batch& b) {
    Tensor loss = sorting_loss(net, b);
    opt.zero_grad();
    loss.backward();
    tg::optim::clip_grad_norm_(opt.parameters(), cfg.clip);
    opt.step();
    return loss.item<double>();
  };
  if (f.bench) {
    tg::recipes::run_bench("pointer_net", f.steps > 0 ? f.steps : 20, 3, cfg.batch * mean_length,
                           [&] { train_step(train.next()); });
    return;
  }
  fmt::print("pointer_net: sorting {}..{} numbers (scored on {}..{}) | LSTM {} | {:.3f}M parameters\n",
             cfg.min_length, cfg.max_length, cfg.min_length, cfg.eval_max_length, cfg.hidden,
             static_cast<double>(net.num_parameters()) / 1e6);
  fmt::print("training {} steps of batch {}: Adam lr {:.1e}, cosine to 0, clip {} | held out: {} per length (beam {} "
             "on the first {})\n", total, cfg.batch, cfg.lr, cfg.clip, cfg.eval_size, cfg.beam, cfg.beam_eval);
  std::fflush(stdout);

  tg::optim::WarmupCosineLR sched(opt, std::min<int64_t>(100, total / 10), total, 0.0);
  std::vector<LengthScore> by_length;
  tg::recipes::TaskLoop loop;
  loop.total_steps = total;
  loop.eval_every = f.eval_every > 0 ? f.eval_every : 250;
  loop.tokens_per_step = cfg.batch * mean_length;  // numbers per step
  loop.schedule = &sched;
  loop.step = train_step;
  loop.evaluate = [&] {
    by_length.clear();
    std::vector<tg::recipes::MetricsWriter::Field> out;
    double trained = 0;  // mean exact accuracy over the training lengths
    const double lengths = static_cast<double>(cfg.max_length - cfg.min_length + 1);
    for (const tg::data::Batch& b : held_out) {
      const int64_t n = b.input.size(1);
      by_length.push_back(score(net, b, cfg));
      out.push_back({fmt::format("exact_n{}", n), by_length.back().exact});
      if (n <= cfg.max_length) trained += by_length.back().exact / lengths;
    }
    out.insert(out.begin(), {"accuracy", trained});
    return out;
  };
  tg::recipes::run_task_loop(h, net, opt, train, loop);
  if (by_length.empty()) return;
  const int64_t subset = std::min(cfg.eval_size, cfg.beam_eval);
  fmt::print("accuracy by length (held out: {} sequences each, the first {} also by beam search):\n"
             "  length | exact, greedy | pointers, greedy | exact, greedy (first {}) | exact, beam {} (first {})\n",
             cfg.eval_size, subset, subset, cfg.beam, subset);
  for (size_t i = 0; i < by_length.size(); ++i) {
    const int64_t n = cfg.min_length + static_cast<int64_t>(i);
    fmt::print("  {:>6}{}| {:>12.1f}% | {:>15.1f}% | {:>23.1f}% | {:>21.1f}%\n", n, n > cfg.max_length ? "*" : " ",
               100 * by_length[i].exact, 100 * by_length[i].pointer, 100 * by_length[i].greedy_subset,
               100 * by_length[i].beam_exact);
  }
  fmt::print("  (* longer than any training sequence)\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  tg::recipes::Harness h("pointer_net", "pointer_net: a pointer network learning to sort numbers");
  Config cfg;
  CLI::App& app = h.app();
  app.add_option("--min-length", cfg.min_length, "shortest training sequence")->check(CLI::Range(2, 100));
  app.add_option("--max-length", cfg.max_length, "longest training sequence")->check(CLI::Range(2, 100));
  app.add_option("--eval-max-length", cfg.eval_max_length, "longest held-out sequence")->check(CLI::Range(2, 100));
  app.add_option("--hidden", cfg.hidden, "LSTM hidden units (encoder, decoder, attention)")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch", cfg.batch, "sequences per step")->check(CLI::PositiveNumber);
  app.add_option("--lr", cfg.lr, "peak learning rate (Adam)")->check(CLI::PositiveNumber);
  app.add_option("--clip", cfg.clip, "gradient-norm clipping threshold")->check(CLI::PositiveNumber);
  app.add_option("--eval-size", cfg.eval_size, "held-out sequences per length")->check(CLI::PositiveNumber);
  app.add_option("--beam-eval", cfg.beam_eval, "of those, how many are also decoded by beam search")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--beam", cfg.beam, "beam width")->check(CLI::PositiveNumber);
  return h.main(argc, argv, [&] { run(h, cfg); });
}
