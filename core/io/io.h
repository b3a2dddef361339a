// Tensor files: NumPy .npy and safetensors, so tensors and checkpoints move between tapegrad, NumPy and PyTorch.
// Writes go to a temporary file that is renamed over the target, so a crash mid-write leaves the old file intact.
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace tg::io {

Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const Tensor& t);

// Name -> tensor, ordered by name. metadata is the optional "__metadata__" string map.
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace tg::io
