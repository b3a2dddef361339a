// The train/validation split and the two LM batch streams (shuffled windows, sequential lanes), with their state.
#include "data/dataset.h"

#include <cmath>

#include "core/error.h"
#include "core/ops.h"
#include "data/sampling.h"
#include "optim/grad_noise.h"

namespace tg::data {

Split split_tokens(const std::vector<int64_t>& tokens, double val_fraction) {
  TG_CHECK(val_fraction >= 0 && val_fraction < 1, "split_tokens: val_fraction must be in [0, 1), got {}",
           val_fraction);
  const auto n = static_cast<int64_t>(tokens.size());
  const auto n_val = static_cast<int64_t>(std::llround(static_cast<double>(n) * val_fraction));
  Split s;
  s.train.assign(tokens.begin(), tokens.end() - n_val);
  s.val.assign(tokens.end() - n_val, tokens.end());
  return s;
}

// ---------------------------------------------------------------- state helpers

Tensor state_scalar(int64_t v) { return tensor<int64_t>({v}).reshape({}); }

int64_t state_int(const StateDict& state, const std::string& key, const std::string& what) {
  auto it = state.find(key);
  TG_CHECK(it != state.end(), "{}: the state has no entry '{}'", what, key);
  TG_CHECK(it->second.defined() && it->second.dtype() == kInt64 && it->second.numel() == 1,
           "{}: state entry '{}' must be one int64 value", what, key);
  return it->second.item<int64_t>();
}

void check_state_config(const StateDict& state, const std::vector<int64_t>& expected, const std::string& what) {
  auto it = state.find("config");
  TG_CHECK(it != state.end() && it->second.defined() && it->second.dtype() == kInt64,
           "{}: the state has no int64 entry 'config'", what);
  std::vector<int64_t> got = it->second.to_vector<int64_t>();
  TG_CHECK(got == expected, "{}: the state was saved with configuration {} but this stream has {} (batch size, "
           "sequence length, token count, ...): resuming it would change the data", what, got, expected);
}

namespace {
Tensor config_tensor(const std::vector<int64_t>& v) { return tensor<int64_t>(v); }

// Fills row b of input/target ([B, T] int64, contiguous) from tokens[start ..].
void fill_row(const std::vector<int64_t>& tokens, int64_t start, int64_t len, int64_t b, Batch& out) {
  int64_t* x = out.input.data<int64_t>() + b * len;
  int64_t* y = out.target.data<int64_t>() + b * len;
  for (int64_t t = 0; t < len; ++t) {
    x[t] = tokens[static_cast<size_t>(start + t)];
    y[t] = tokens[static_cast<size_t>(start + t + 1)];
  }
}
}  // namespace

// ---------------------------------------------------------------- LMWindowStream

LMWindowStream::LMWindowStream(std::vector<int64_t> tokens, WindowOptions options)
    : tokens_(std::move(tokens)), o_(options), gen_(options.seed) {
  const int64_t n = static_cast<int64_t>(tokens_.size()), B = o_.batch_size, T = o_.seq_len;
  TG_CHECK(B >= 1 && T >= 1, "LMWindowStream: batch_size and seq_len must be >= 1, got {} and {}", B, T);
  // The worst offset, T - 1, still has to leave one full batch.
  TG_CHECK(n >= (B + 1) * T, "LMWindowStream: {} tokens are too few for batches of {} windows of {} tokens (need at "
           "least {})", n, B, T, (B + 1) * T);
  start_epoch();
}

void LMWindowStream::start_epoch() {
  epoch_gen_ = gen_;
  const int64_t T = o_.seq_len, n = static_cast<int64_t>(tokens_.size());
  const int64_t offset = o_.random_offset ? uniform_int(gen_, T) : 0;
  const int64_t count = (n - offset - 1) / T;
  starts_.resize(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) starts_[static_cast<size_t>(k)] = offset + k * T;
  if (o_.shuffle) shuffle(starts_, gen_);
  index_ = 0;
}

int64_t LMWindowStream::batches_per_epoch() const { return static_cast<int64_t>(starts_.size()) / o_.batch_size; }

Batch LMWindowStream::next() {
  if (index_ >= batches_per_epoch()) {
    ++epoch_;
    start_epoch();
  }
  const int64_t B = o_.batch_size, T = o_.seq_len;
  Batch b{empty({B, T}, kInt64), empty({B, T}, kInt64), {}, {}, epoch_, index_};
  for (int64_t r = 0; r < B; ++r) fill_row(tokens_, starts_[static_cast<size_t>(index_ * B + r)], T, r, b);
  ++index_;
  return b;
}

StateDict LMWindowStream::state_dict() const {
  StateDict s{{"epoch", state_scalar(epoch_)},
              {"index", state_scalar(index_)},
              {"config", config_tensor({o_.batch_size, o_.seq_len, static_cast<int64_t>(tokens_.size()), o_.shuffle,
                                        o_.random_offset})}};
  optim::generator_to_tensors(epoch_gen_, "rng.", s);
  return s;
}

void LMWindowStream::load_state_dict(const StateDict& s) {
  const std::string what = "LMWindowStream::load_state_dict";
  check_state_config(s, {o_.batch_size, o_.seq_len, static_cast<int64_t>(tokens_.size()), o_.shuffle,
                         o_.random_offset}, what);
  const int64_t epoch = state_int(s, "epoch", what), index = state_int(s, "index", what);
  Generator g;
  optim::generator_from_tensors(g, "rng.", s, what);
  gen_ = g;
  start_epoch();  // the same draws as when the epoch first started
  TG_CHECK(epoch >= 0 && index >= 0 && index <= batches_per_epoch(), "{}: epoch {} / index {} out of range (the "
           "epoch has {} batches)", what, epoch, index, batches_per_epoch());
  epoch_ = epoch;
  index_ = index;
}

// ---------------------------------------------------------------- LMLaneStream

LMLaneStream::LMLaneStream(std::vector<int64_t> tokens, LaneOptions options) : tokens_(std::move(tokens)), o_(options) {
  const int64_t n = static_cast<int64_t>(tokens_.size()), B = o_.batch_size, T = o_.seq_len;
  TG_CHECK(B >= 1 && T >= 1, "LMLaneStream: batch_size and seq_len must be >= 1, got {} and {}", B, T);
  lane_len_ = n > 0 ? (n - 1) / B : 0;
  const int64_t need = o_.drop_last ? T : 1;
  TG_CHECK(lane_len_ >= need, "LMLaneStream: {} tokens are too few for {} lanes of at least {} steps (need at "
           "least {} tokens)", n, B, need, B * need + 1);
}

int64_t LMLaneStream::batches_per_epoch() const {
  const int64_t T = o_.seq_len;
  return o_.drop_last ? lane_len_ / T : (lane_len_ + T - 1) / T;
}

int64_t LMLaneStream::tokens_per_epoch() const {
  return o_.batch_size * (o_.drop_last ? batches_per_epoch() * o_.seq_len : lane_len_);
}

Batch LMLaneStream::next() {
  if (index_ >= batches_per_epoch()) {
    ++epoch_;
    index_ = 0;
  }
  const int64_t B = o_.batch_size, t0 = index_ * o_.seq_len, len = std::min(o_.seq_len, lane_len_ - t0);
  Batch b{empty({B, len}, kInt64), empty({B, len}, kInt64), {}, {}, epoch_, index_};
  for (int64_t r = 0; r < B; ++r) fill_row(tokens_, r * lane_len_ + t0, len, r, b);
  ++index_;
  return b;
}

StateDict LMLaneStream::state_dict() const {
  return {{"epoch", state_scalar(epoch_)},
          {"index", state_scalar(index_)},
          {"config", config_tensor({o_.batch_size, o_.seq_len, static_cast<int64_t>(tokens_.size()), o_.drop_last})}};
}

void LMLaneStream::load_state_dict(const StateDict& s) {
  const std::string what = "LMLaneStream::load_state_dict";
  check_state_config(s, {o_.batch_size, o_.seq_len, static_cast<int64_t>(tokens_.size()), o_.drop_last}, what);
  const int64_t epoch = state_int(s, "epoch", what), index = state_int(s, "index", what);
  TG_CHECK(epoch >= 0 && index >= 0 && index <= batches_per_epoch(), "{}: epoch {} / index {} out of range (an epoch "
           "has {} batches)", what, epoch, index, batches_per_epoch());
  epoch_ = epoch;
  index_ = index;
}

}  // namespace tg::data
