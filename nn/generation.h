// Choosing the next token from logits: greedy, temperature, top-k and top-p (nucleus) sampling, seeded by a
// tg::Generator so that a seed gives the same text. Used by GPT::generate (nn/transformer.h).
#pragma once
#include <cstdint>

#include "core/random.h"
#include "core/tensor.h"

namespace tg::nn {

struct SamplingOptions {
  bool greedy = false;       // argmax; the other fields are then ignored
  double temperature = 1.0;  // logits / temperature (> 0)
  int64_t top_k = 0;         // keep the k most likely tokens; 0: all
  double top_p = 1.0;        // keep the smallest set whose probability reaches top_p (Holtzman et al. 2019); 1: all
};

// One token per row of logits [B, V] (or [V]): int64 [B] (or 0-d). top-k applies before top-p, as in HF
// transformers. A row draws one uniform from gen and inverts the cumulative distribution of the kept tokens.
Tensor sample_next(const Tensor& logits, const SamplingOptions& options = {}, Generator& gen = default_generator());

}  // namespace tg::nn
