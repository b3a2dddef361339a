// The training loop of the recipes on synthetic tasks (seq2seq, pointer_net): batches from a seeded TaskStream,
// one optimizer step each, a progress line, metrics.jsonl, an evaluation every --eval-every steps and at the end,
// --save / --save-every / --resume / --stop-after. The recipe supplies the step and the evaluation, so its file
// holds only its model and how it is scored.
//
//   tg::recipes::TaskLoop loop;
//   loop.total_steps = 2000;
//   loop.step = [&](const tg::data::Batch& b) { ...forward, backward, opt.step()...; return loss; };
//   loop.evaluate = [&] { return std::vector<Field>{{"accuracy", acc}}; };
//   tg::recipes::run_task_loop(h, model, opt, stream, loop);
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "recipes/common/harness.h"
#include "recipes/common/metrics.h"

namespace tg::nn {
class Module;
}
namespace tg::optim {
class Optimizer;
class LRScheduler;
}  // namespace tg::optim

namespace tg::recipes {

struct TaskLoop {
  int64_t total_steps = 1000;
  int64_t eval_every = 250;
  double tokens_per_step = 0;  // for the tokens/s of the progress line
  // One training step on a batch; returns its loss.
  std::function<double(const data::Batch&)> step;
  // Scores the model now (the loop turns off grad mode and sets eval mode around it); the fields go into
  // metrics.jsonl and the progress output, e.g. {"accuracy", 0.93}.
  std::function<std::vector<MetricsWriter::Field>()> evaluate;
  optim::LRScheduler* schedule = nullptr;  // stepped after every step and checkpointed, when given
};

// Runs the loop; returns the last evaluation's fields. A resumed run continues bit-identically: the checkpoint
// holds the model, optimizer, step, default generator, the stream's position and the schedule.
std::vector<MetricsWriter::Field> run_task_loop(Harness& h, nn::Module& model, optim::Optimizer& opt,
                                                data::BatchStream& stream, const TaskLoop& loop);

}  // namespace tg::recipes
