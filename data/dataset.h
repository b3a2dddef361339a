// Language-model datasets over a token stream: a train/validation split, and two ways to cut batches from it.
//   LMWindowStream  non-overlapping windows of seq_len + 1 tokens in a seeded random order per epoch (GPT-style)
//   LMLaneStream    the corpus cut into batch_size lanes read in order, so batch k + 1 continues batch k lane by
//                   lane and a recurrent model can carry its state across batches (Zaremba et al. 2014, char-rnn)
// Both are BatchStreams: next() gives the next batch, and state_dict() / load_state_dict() capture the position
// and the shuffling generator, so a resumed run sees exactly the batches an uninterrupted one would.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace tg::data {

// One batch. For language models input and target are int64 [B, T] with target = input shifted by one token.
// The synthetic tasks (data/synthetic.h) fill the same fields with their own shapes, and put -100 (the default
// ignore_index of cross_entropy) in target wherever nothing is scored.
struct Batch {
  Tensor input, target;
  Tensor input_lengths, target_lengths;  // int64 [B], for padded variable-length tasks; undefined otherwise
  int64_t epoch = 0;                     // which pass over the data the batch belongs to
  int64_t index = 0;                     // its position within that pass (0: a recurrent model resets its state)
};

using StateDict = std::map<std::string, Tensor>;

// A source of batches in a fixed order, given its seed and its state.
class BatchStream {
 public:
  virtual ~BatchStream() = default;
  virtual Batch next() = 0;
  virtual StateDict state_dict() const = 0;
  // A tg::Error naming the entry when one is missing or malformed, or when the state belongs to another
  // configuration (e.g. a different batch size), since resuming it would silently change the data.
  virtual void load_state_dict(const StateDict& state) = 0;
};

struct Split {
  std::vector<int64_t> train, val;
};
// The last val_fraction of the tokens (rounded to the nearest token) become validation, the rest training: a
// contiguous split, so no validation text leaks into training windows.
Split split_tokens(const std::vector<int64_t>& tokens, double val_fraction);

struct WindowOptions {
  int64_t batch_size = 32;
  int64_t seq_len = 64;
  bool shuffle = true;         // false: windows in corpus order
  bool random_offset = true;   // each epoch starts its windows at a random offset in [0, seq_len)
  uint64_t seed = 0;
};

// Epoch e: the windows [o + k T, o + k T + T] (T + 1 tokens: input and shifted target) for every k that fits,
// o the epoch's offset; shuffled; grouped into batches of B, the last incomplete batch dropped.
class LMWindowStream : public BatchStream {
 public:
  LMWindowStream(std::vector<int64_t> tokens, WindowOptions options);
  Batch next() override;
  // "epoch", "index", "config" (batch size, seq len, token count, flags) and "rng.*": the generator as it was
  // at the start of the epoch, from which the epoch's offset and order are drawn again.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  int64_t batches_per_epoch() const;  // for the epoch's offset; at least this many for any offset

 private:
  void start_epoch();  // draws the offset and order from gen_
  std::vector<int64_t> tokens_;
  WindowOptions o_;
  Generator gen_, epoch_gen_;  // epoch_gen_: gen_ before the current epoch's draws
  std::vector<int64_t> starts_;
  int64_t epoch_ = 0, index_ = 0;
};

struct LaneOptions {
  int64_t batch_size = 32;
  int64_t seq_len = 64;
  bool drop_last = true;  // false: the last batch of an epoch may be shorter than seq_len (evaluation uses this)
};

// Lane b holds tokens [b L, (b + 1) L + 1), L = (n - 1) / B; batch k holds steps [k T, k T + T) of every lane as
// input [B, T] and the next token of each as target. Epochs repeat the same batches.
class LMLaneStream : public BatchStream {
 public:
  LMLaneStream(std::vector<int64_t> tokens, LaneOptions options);
  Batch next() override;
  StateDict state_dict() const override;  // "epoch", "index", "config"
  void load_state_dict(const StateDict& state) override;
  int64_t batches_per_epoch() const;
  int64_t tokens_per_epoch() const;  // the number of scored targets in one epoch

 private:
  std::vector<int64_t> tokens_;
  LaneOptions o_;
  int64_t lane_len_ = 0;
  int64_t epoch_ = 0, index_ = 0;
};

// Helpers shared by the streams: small 0-d/1-d int64 state entries and their checked lookup.
Tensor state_scalar(int64_t v);
int64_t state_int(const StateDict& state, const std::string& key, const std::string& what);
// Checks that state["config"] equals expected (a tg::Error naming `what` and both configurations when not).
void check_state_config(const StateDict& state, const std::vector<int64_t>& expected, const std::string& what);

}  // namespace tg::data
