// Synthetic tasks from the papers the recipes reproduce, each a seeded generator of Batches. Every draw comes from
// the Generator passed in, so a seed gives the same batches everywhere; TaskStream makes any of them a BatchStream
// with saveable state. Token targets are -100 (cross_entropy's default ignore_index) wherever nothing is scored.
//
//   tg::Generator gen(0);
//   tg::data::Batch b = tg::data::mqar({.vocab_size = 8192, .num_kv_pairs = 8, .seq_len = 64}, 32, gen);
//   tg::data::TaskStream s([](tg::Generator& g) { return tg::data::selective_copying({}, 32, g); }, /*seed=*/0);
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/dataset.h"

namespace tg::data {

inline constexpr int64_t kIgnore = -100;

// ---- copying and selective copying (Arjovsky et al. 2016; Gu & Dao 2023, "Mamba", section 3.1 and Table 1)
// Tokens: 0 = blank, 1 = marker, 2..vocab_size-1 = data. input int64 [B, seq_len + num_tokens]: a region of
// seq_len positions holding num_tokens data tokens (uniform over the data tokens) among blanks, then num_tokens
// markers. target: the data tokens in order at the marker positions, -100 elsewhere. Selective: the data
// positions are a random sorted subset of the region; plain copying: they are its first num_tokens positions
// (a fixed spacing, which a time-invariant model such as S4 can learn; the selective version needs selection).
struct CopyingOptions {
  int64_t vocab_size = 16;
  int64_t num_tokens = 16;
  int64_t seq_len = 256;
  bool selective = true;
};
Batch copying(const CopyingOptions& options, int64_t batch_size, Generator& gen);
inline Batch selective_copying(CopyingOptions options, int64_t batch_size, Generator& gen) {
  options.selective = true;
  return copying(options, batch_size, gen);
}

// ---- induction heads (Olsson et al. 2022; Mamba, section 4.1.2)
// Token 0 is the trigger; every other position is uniform over 1..vocab_size-1. The trigger occurs once at a
// random position p <= seq_len - 3, followed by the answer, and again at the last position, where the target is
// the answer (-100 elsewhere). input int64 [B, seq_len].
struct InductionOptions {
  int64_t vocab_size = 16;
  int64_t seq_len = 256;
};
Batch induction_heads(const InductionOptions& options, int64_t batch_size, Generator& gen);

// ---- multi-query associative recall, MQAR (Arora et al. 2023, "Zoology"; as zoology/data/associative_recall.py)
// Keys are distinct draws from [1, vocab_size / 2), values from [vocab_size / 2, vocab_size). input int64
// [B, seq_len]: the num_kv_pairs pairs "k v" first, then every key once more as a query, at position
// 2 num_kv_pairs + 2 g for distinct gaps g drawn without replacement from [0, (seq_len - 2 num_kv_pairs) / 2) with
// probability proportional to a (g + 1)^(a - 1), a = power_a (near queries likelier); the other positions hold
// random tokens (or 0 when random_non_queries is false). target: the key's value at each query, -100 elsewhere.
struct MqarOptions {
  int64_t vocab_size = 8192;
  int64_t num_kv_pairs = 8;
  int64_t seq_len = 64;
  double power_a = 0.01;
  bool random_non_queries = true;
};
Batch mqar(const MqarOptions& options, int64_t batch_size, Generator& gen);

// ---- the adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015 and Arjovsky et al. 2016)
// input float32 [B, seq_len, 2]: channel 0 uniform in [0, 1), channel 1 a marker that is 1 at exactly two
// positions, one uniform in each half. target float32 [B]: the sum of the two marked values (regression).
struct AddingOptions {
  int64_t seq_len = 100;
};
Batch adding_problem(const AddingOptions& options, int64_t batch_size, Generator& gen);

// ---- sorting, for pointer networks (Vinyals et al. 2015)
// input float32 [B, length] uniform in [0, 1); target int64 [B, length]: target[i] is the position of the i-th
// smallest input (the pointers to output in order).
struct SortingOptions {
  int64_t length = 10;
};
Batch sorting(const SortingOptions& options, int64_t batch_size, Generator& gen);

// ---- sequence to sequence on digit strings: reversal and integer addition (Sutskever et al. 2014 style;
// Zaremba & Sutskever 2014 for addition)
struct Seq2SeqVocab {
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kDigit0 = 3, kPlus = 13, kSize = 14;
  // "12+7", "<bos>19<eos>"; padding is dropped.
  static std::string to_string(const std::vector<int64_t>& ids);
};
enum class Seq2SeqTask { Reverse, Addition };
// Reverse: the input is min..max_digits random digits and the target the same digits reversed. Addition: the
// input is "a+b" with a and b of min..max_digits digits (no leading zeros), the target the decimal sum.
// input int64 [B, S], target int64 [B, U] = <bos> answer <eos>, both padded with kPad to the batch's longest;
// input_lengths and target_lengths (<bos> and <eos> included) say where the padding starts.
struct Seq2SeqOptions {
  Seq2SeqTask task = Seq2SeqTask::Reverse;
  int64_t min_digits = 1;
  int64_t max_digits = 8;
};
Batch seq2seq_digits(const Seq2SeqOptions& options, int64_t batch_size, Generator& gen);

// ---- ListOps (Nangia & Bowman 2018; the Long Range Arena generator of Tay et al. 2021)
// Nested prefix expressions such as "[MAX 2 9 [MIN 4 7 ] 0 ]" over MIN, MAX, MED (median, rounded down) and SM
// (sum modulo 10) on the digits 0-9. As LRA's listops.py: below max_depth a node is an operator with probability
// 0.25 (else a digit), with 2..max_args arguments; expressions outside [min_length, max_length] tokens are drawn
// again. input int64 [B, L] padded with kPad to the batch's longest, input_lengths, target int64 [B] the value.
// LRA uses min_length 500, max_length 2000; parentheses of LRA's text form are not emitted.
struct ListOpsVocab {
  static constexpr int64_t kPad = 0, kDigit0 = 1, kMin = 11, kMax = 12, kMed = 13, kSumMod = 14, kClose = 15,
                           kSize = 16;
  static std::string to_string(const std::vector<int64_t>& ids);
  // The value of an expression (no padding); a tg::Error when it is malformed. Independent of the generator, so
  // tests can check one against the other.
  static int64_t evaluate(const std::vector<int64_t>& ids);
};
struct ListOpsOptions {
  int64_t max_depth = 10;
  int64_t max_args = 10;
  int64_t min_length = 500;
  int64_t max_length = 2000;
};
Batch listops(const ListOpsOptions& options, int64_t batch_size, Generator& gen);

// Any task as a BatchStream: next() calls fn with the stream's own generator. State: "index" and "rng.*".
using TaskFn = std::function<Batch(Generator&)>;
class TaskStream : public BatchStream {
 public:
  TaskStream(TaskFn fn, uint64_t seed);
  Batch next() override;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

 private:
  TaskFn fn_;
  Generator gen_;
  int64_t index_ = 0;
};

}  // namespace tg::data
