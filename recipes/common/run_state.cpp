// Recipe checkpoints over optim/checkpoint.h, plus the tokenizer file and the helpers for nested extras.
#include "recipes/common/run_state.h"

#include <filesystem>

#include "core/error.h"
#include "core/io/io.h"
#include "core/ops.h"
#include "core/random.h"
#include "optim/checkpoint.h"

namespace tg::recipes {

namespace fs = std::filesystem;

void save_run(const std::string& dir, const nn::Module& model, const optim::Optimizer& opt, int64_t step,
              const TensorMap& extra, const data::Tokenizer* tokenizer) {
  TG_CHECK(!dir.empty(), "save_run: no output folder (--out)");
  if (tokenizer) tokenizer->save((fs::path(dir) / kTokenizerFile).string());
  save_checkpoint((fs::path(dir) / kCheckpointFile).string(), model, opt, step, default_generator(), extra);
}

std::string resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  TG_CHECK(fs::exists(path, ec), "--resume {}: no such file or folder", path);
  if (fs::is_directory(path, ec)) {
    const std::string file = (fs::path(path) / kCheckpointFile).string();
    TG_CHECK(fs::exists(file, ec), "--resume {}: the folder holds no {} (was the run saved with --save?)", path,
             kCheckpointFile);
    return file;
  }
  return path;
}

std::unique_ptr<data::Tokenizer> load_run_tokenizer(const std::string& checkpoint_file) {
  const std::string file = (fs::path(checkpoint_file).parent_path() / kTokenizerFile).string();
  std::error_code ec;
  TG_CHECK(fs::exists(file, ec), "checkpoint {}: its tokenizer {} is missing (it is saved beside the checkpoint)",
           checkpoint_file, file);
  return data::load_tokenizer(file);
}

TensorMap read_run_extras(const std::string& checkpoint_file) {
  return take_state(io::load_safetensors(checkpoint_file), "extra.");
}

int64_t load_run(const std::string& checkpoint_file, nn::Module& model, optim::Optimizer& opt, TensorMap* extra) {
  return load_checkpoint(checkpoint_file, model, opt, default_generator(), extra);
}

void put_state(TensorMap& extra, const std::string& prefix, const TensorMap& state) {
  for (const auto& [k, v] : state) extra[prefix + k] = v;
}

TensorMap take_state(const TensorMap& extra, const std::string& prefix) {
  TensorMap out;
  for (auto it = extra.lower_bound(prefix); it != extra.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    out[it->first.substr(prefix.size())] = it->second;
  return out;
}

Tensor scalar_entry(double v) { return scalar_tensor(v, kFloat64); }

double scalar_value(const TensorMap& extra, const std::string& key) {
  auto it = extra.find(key);
  TG_CHECK(it != extra.end() && it->second.defined() && it->second.numel() == 1,
           "checkpoint: the entry 'extra.{}' is missing (was it saved by another recipe or version?)", key);
  return it->second.item<double>();
}

}  // namespace tg::recipes
