// Checkpoints of a recipe run: <dir>/ckpt.safetensors (model, optimizer, step, the default generator and the
// recipe's extras: data position, schedule, carried state, elapsed time; see optim/checkpoint.h) and
// <dir>/tokenizer.json beside it, because token ids mean nothing without their vocabulary.
//
//   std::map<std::string, tg::Tensor> extra;
//   tg::recipes::put_state(extra, "data.", loader.state_dict());
//   tg::recipes::save_run(h.out_dir(), model, opt, step, extra, &tokenizer);
//   ...
//   const std::string file = tg::recipes::resolve_checkpoint(flags.resume);
//   auto tok = tg::recipes::load_run_tokenizer(file);       // build the model with tok->vocab_size()
//   int64_t step = tg::recipes::load_run(file, model, opt, &extra);
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "data/tokenizer.h"

namespace tg::nn {
class Module;
}
namespace tg::optim {
class Optimizer;
}

namespace tg::recipes {

using TensorMap = std::map<std::string, Tensor>;

inline constexpr const char* kCheckpointFile = "ckpt.safetensors";
inline constexpr const char* kTokenizerFile = "tokenizer.json";

// Writes tokenizer.json (when tokenizer is given) and then ckpt.safetensors into dir, each through a temporary file
// renamed into place, so an interrupted save leaves the previous checkpoint whole.
void save_run(const std::string& dir, const nn::Module& model, const optim::Optimizer& opt, int64_t step,
              const TensorMap& extra, const data::Tokenizer* tokenizer);

// The checkpoint file a --resume argument names: the file itself, or ckpt.safetensors inside a folder. A tg::Error
// saying what is missing otherwise.
std::string resolve_checkpoint(const std::string& path);
// The tokenizer saved beside a checkpoint file.
std::unique_ptr<data::Tokenizer> load_run_tokenizer(const std::string& checkpoint_file);
// The recipe's extras stored in a checkpoint, read without restoring anything: to check, before building the model,
// that the checkpoint was made with the same configuration (a clearer error than a parameter-shape mismatch).
TensorMap read_run_extras(const std::string& checkpoint_file);
// Restores model, optimizer and the default generator, fills *extra, returns the step. Nothing changes unless
// the whole file checks (a truncated or corrupt file is a tg::Error naming it).
int64_t load_run(const std::string& checkpoint_file, nn::Module& model, optim::Optimizer& opt, TensorMap* extra);

// Nesting a component's state dict inside the extras under a prefix, and taking it out again.
void put_state(TensorMap& extra, const std::string& prefix, const TensorMap& state);
TensorMap take_state(const TensorMap& extra, const std::string& prefix);
// One float64 number as an extra, and back (a tg::Error naming the key when absent).
Tensor scalar_entry(double v);
double scalar_value(const TensorMap& extra, const std::string& key);

}  // namespace tg::recipes
