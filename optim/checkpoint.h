// Training checkpoints: a model, its optimizer, the step and a random generator in ONE .safetensors file, so that
// a run stopped at step k and resumed from the file continues bit-identically (same build and thread count).
//
//   tg::save_checkpoint("run/ckpt.safetensors", model, opt, step, tg::default_generator());
//   int64_t step = tg::load_checkpoint("run/ckpt.safetensors", model, opt, tg::default_generator());
//
// Entries: "model.<name>" for each state_dict() entry of the module (parameters, persistent buffers),
// "optim.<key>" for the optimizer's state_dict(), "rng.state" / "rng.has_spare" / "rng.spare" for the generator,
// "step" (0-d int64), and "extra.<key>" for anything else the caller passes (a scheduler's or GradientNoise's
// state_dict). The __metadata__ holds the format, the step, the optimizer's name and a 64-bit checksum of every
// entry's bytes ("checksum.<entry>"). The write goes to a temporary file that is flushed, fsynced and renamed
// over the target, so a crash mid-save leaves the previous checkpoint intact. A truncated, corrupt or
// mismatched file is a tg::Error that names the file and the entry.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "core/random.h"
#include "core/tensor.h"

namespace tg {

namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt, int64_t step,
                     const Generator& rng, const std::map<std::string, Tensor>& extra = {});

// Restores model (strictly: every entry, same shapes), optimizer and generator, and returns the step. When extra
// is given it receives the "extra.<key>" entries, prefix removed. Nothing is changed unless the whole file checks.
int64_t load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& opt, Generator& rng,
                        std::map<std::string, Tensor>* extra = nullptr);

// The 64-bit checksum stored for each entry (FNV-1a over its bytes in row-major order; not cryptographic).
uint64_t tensor_checksum(const Tensor& t);

}  // namespace tg
