// Checkpoint save/load over core/io's safetensors, with per-entry checksums and all-or-nothing restore.
#include "optim/checkpoint.h"

#include <cstring>

#include "autograd/grad_mode.h"
#include "core/io/io.h"
#include "core/ops.h"
#include "nn/module.h"
#include "optim/grad_noise.h"
#include "optim/optimizer.h"

namespace tg {

namespace {

constexpr const char* kFormat = "tapegrad-checkpoint-1";

std::string hex(uint64_t v) { return fmt::format("{:016x}", v); }

}  // namespace

uint64_t tensor_checksum(const Tensor& t) {
  Tensor c = t.contiguous();
  const unsigned char* p = static_cast<const unsigned char*>(c.data_ptr());
  const size_t n = static_cast<size_t>(c.numel()) * element_size(c.dtype());
  // FNV-1a over 8-byte words (then the tail bytes): fast enough for large models, and any flipped bit shows.
  uint64_t h = 0xcbf29ce484222325ULL;
  const uint64_t prime = 0x100000001b3ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * prime;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * prime;
  return (h ^ n) * prime;  // the length too, so an empty and a zero-filled tensor differ
}

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt, int64_t step,
                     const Generator& rng, const std::map<std::string, Tensor>& extra) {
  std::map<std::string, Tensor> all;
  auto add = [&](const std::string& key, const Tensor& t) {
    TG_CHECK(t.defined(), "save_checkpoint: {}: entry '{}' is an undefined tensor", path, key);
    TG_CHECK(all.emplace(key, t.detach()).second, "save_checkpoint: {}: duplicate entry '{}'", path, key);
  };
  for (const auto& [name, t] : model.state_dict()) add("model." + name, t);
  for (const auto& [key, t] : opt.state_dict()) add("optim." + key, t);
  std::map<std::string, Tensor> rng_entries;
  optim::generator_to_tensors(rng, "rng.", rng_entries);
  for (const auto& [key, t] : rng_entries) add(key, t);
  add("step", tensor<int64_t>({step}).reshape({}));
  for (const auto& [key, t] : extra) add("extra." + key, t);

  std::map<std::string, std::string> meta{{"format", kFormat}, {"step", std::to_string(step)},
                                          {"optimizer", opt.name()}};
  for (const auto& [key, t] : all) meta["checksum." + key] = hex(tensor_checksum(t));
  io::save_safetensors(path, all, meta);
}

int64_t load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& opt, Generator& rng,
                        std::map<std::string, Tensor>* extra) {
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> all = io::load_safetensors(path, &meta);  // names the file on truncation etc.
  const std::string op = "load_checkpoint: " + path;

  auto it = meta.find("format");
  TG_CHECK(it != meta.end() && it->second == kFormat, "{}: not a tapegrad checkpoint (metadata format is '{}', "
           "expected '{}')", op, it == meta.end() ? "" : it->second, kFormat);
  it = meta.find("optimizer");
  TG_CHECK(it != meta.end() && it->second == opt.name(), "{}: the checkpoint holds {} state but the optimizer is {}",
           op, it == meta.end() ? "no optimizer" : it->second, opt.name());

  // Every entry has a checksum and matches it, and no checksum is left without its entry.
  for (const auto& [key, t] : all) {
    auto c = meta.find("checksum." + key);
    TG_CHECK(c != meta.end(), "{}: entry '{}' has no checksum in the metadata", op, key);
    TG_CHECK(c->second == hex(tensor_checksum(t)), "{}: entry '{}' is corrupt: its checksum is {} but the "
             "metadata says {}", op, key, hex(tensor_checksum(t)), c->second);
  }
  for (const auto& [key, v] : meta)
    if (key.rfind("checksum.", 0) == 0)
      TG_CHECK(all.count(key.substr(9)), "{}: entry '{}' is missing (the metadata has its checksum)", op,
               key.substr(9));

  std::map<std::string, Tensor> model_sd, optim_sd, rng_sd, extra_sd;
  int64_t step = -1;
  for (const auto& [key, t] : all) {
    auto strip = [&](const char* prefix, std::map<std::string, Tensor>& into) {
      size_t n = std::strlen(prefix);
      if (key.compare(0, n, prefix) != 0) return false;
      into[key.substr(n)] = t;
      return true;
    };
    if (strip("model.", model_sd) || strip("optim.", optim_sd) || strip("extra.", extra_sd)) continue;
    if (key.rfind("rng.", 0) == 0) {
      rng_sd[key] = t;
    } else if (key == "step") {
      TG_CHECK(t.dtype() == kInt64 && t.numel() == 1, "{}: entry 'step' must be one int64", op);
      step = t.item<int64_t>();
    } else {
      TG_ERROR("{}: unexpected entry '{}'", op, key);
    }
  }
  TG_CHECK(step >= 0, "{}: missing or negative entry 'step'", op);

  // Check everything that can be checked without changing anything, then restore. The module and optimizer
  // validate fully before writing, so the order below only matters for the generator, which cannot fail last.
  Generator g = rng;
  try {
    optim::generator_from_tensors(g, "rng.", rng_sd, "rng");
  } catch (const Error& e) {
    TG_ERROR("{}: {}", op, e.what());
  }
  // A dry run of the model entries: the same names and shapes as the module's state_dict.
  {
    auto sd = model.state_dict();
    std::map<std::string, Tensor> want(sd.begin(), sd.end());
    for (const auto& [name, t] : sd) {  // in the module's order, so the first problem reported is the first entry
      auto m = model_sd.find(name);
      TG_CHECK(m != model_sd.end(), "{}: missing entry 'model.{}' (the {} has it, shape {})", op, name, model.name(),
               shape_str(t.sizes()));
      TG_CHECK(m->second.sizes() == t.sizes(), "{}: entry 'model.{}' has shape {} but the {} expects {}", op, name,
               shape_str(m->second.sizes()), model.name(), shape_str(t.sizes()));
    }
    for (const auto& [name, t] : model_sd)
      TG_CHECK(want.count(name), "{}: unexpected entry 'model.{}' (the {} has no such parameter or buffer)", op, name,
               model.name());
  }
  // The optimizer checks its whole dict before it changes anything; keep its state to undo a later failure.
  optim::StateDict optim_before = opt.state_dict();
  for (auto& [k, t] : optim_before) t = t.clone();
  try {
    opt.load_state_dict(optim_sd);
  } catch (const Error& e) {
    TG_ERROR("{}: optimizer state (entries 'optim.*'): {}", op, e.what());
  }
  try {
    model.load_state_dict(model_sd, /*strict=*/true);
  } catch (const Error& e) {
    opt.load_state_dict(optim_before);
    TG_ERROR("{}: model (entries 'model.*'): {}", op, e.what());
  }
  rng = g;
  if (extra) *extra = std::move(extra_sd);
  return step;
}

}  // namespace tg
