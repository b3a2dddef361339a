// The shared training loop of the synthetic-task recipes (see task_loop.h).
#include "recipes/common/task_loop.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "nn/module.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "recipes/common/progress.h"
#include "recipes/common/run_state.h"

namespace tg::recipes {

std::vector<MetricsWriter::Field> run_task_loop(Harness& h, nn::Module& model, optim::Optimizer& opt,
                                                data::BatchStream& stream, const TaskLoop& loop) {
  const CommonFlags& f = h.flags();
  const bool resuming = !f.resume.empty();
  int64_t step = 0;
  double elapsed_before = 0, loss_sum = 0;
  int64_t loss_n = 0;
  if (resuming) {
    TensorMap extra;
    step = load_run(resolve_checkpoint(f.resume), model, opt, &extra);
    stream.load_state_dict(take_state(extra, "data."));
    if (loop.schedule) loop.schedule->load_state_dict(take_state(extra, "sched."));
    elapsed_before = scalar_value(extra, "elapsed_s");
    loss_sum = scalar_value(extra, "loss_sum");
    loss_n = static_cast<int64_t>(scalar_value(extra, "loss_n"));
  }
  MetricsWriter metrics;
  if (!h.out_dir().empty()) metrics = MetricsWriter(h.out_path("metrics.jsonl"), resuming ? step : -1);
  Progress progress(loop.total_steps, 0, f.log_every);
  progress.start(step, elapsed_before);

  std::vector<MetricsWriter::Field> last;
  auto evaluate = [&] {
    {
      NoGradGuard no_grad;
      model.eval();
      last = loop.evaluate();
      model.train();
    }
    std::string text = fmt::format("step {:>6}", step);
    for (const auto& [k, v] : last) text += fmt::format(" | {} {:.4f}", k, v);
    progress.message(text);
    metrics.write(step, last, progress.elapsed());
    progress.skip_interval();
  };
  auto save = [&] {
    TensorMap x{{"elapsed_s", scalar_entry(progress.elapsed())},
                {"loss_sum", scalar_entry(loss_sum)},
                {"loss_n", scalar_entry(static_cast<double>(loss_n))}};
    put_state(x, "data.", stream.state_dict());
    if (loop.schedule) put_state(x, "sched.", loop.schedule->state_dict());
    save_run(h.out_dir(), model, opt, step, x, nullptr);
  };

  if (!resuming) evaluate();  // the untrained model, for the learning curve's first point
  bool interrupted = false;
  while (step < loop.total_steps) {
    if (Harness::interrupted() || (f.stop_after > 0 && step >= f.stop_after)) {
      interrupted = true;
      break;
    }
    const data::Batch b = stream.next();
    const double lr = opt.param_groups()[0].lr;
    const double loss = loop.step(b);
    TG_CHECK(std::isfinite(loss), "the loss is {} at step {}: try a lower --lr", loss, step + 1);
    if (loop.schedule) loop.schedule->step();
    ++step;
    loss_sum += loss;
    ++loss_n;
    progress.update(step, loss, lr, static_cast<int64_t>(loop.tokens_per_step));
    if (step % 10 == 0) {
      metrics.write(step, {{"loss", loss_sum / loss_n}, {"lr", lr}, {"tokens_per_s", progress.tokens_per_s()}},
                    progress.elapsed());
      loss_sum = 0;
      loss_n = 0;
    }
    if (step % loop.eval_every == 0 || step == loop.total_steps) evaluate();
    if (f.save_every > 0 && step % f.save_every == 0) save();
  }
  progress.finish();
  if (interrupted) fmt::print("stopped at step {} of {}\n", step, loop.total_steps);
  if (f.save) {
    save();
    fmt::print("saved {} (continue with --resume {})\n", h.out_path(kCheckpointFile), h.out_dir());
  }
  std::fflush(stdout);
  return last;
}

}  // namespace tg::recipes
