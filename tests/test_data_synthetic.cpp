// Synthetic tasks: each generator's documented invariants checked on every row, plus seeded determinism and the
// TaskStream state round trip.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "tapegrad.h"

using doctest::Contains;
namespace data = tg::data;

namespace {

std::vector<int64_t> row(const tg::Tensor& t, int64_t r) { return t.select(0, r).contiguous().to_vector<int64_t>(); }

}  // namespace

TEST_SUITE("data") {

TEST_CASE("copying and selective copying") {
  tg::Generator gen(1);
  for (bool selective : {false, true}) {
    const data::CopyingOptions o{.vocab_size = 10, .num_tokens = 6, .seq_len = 40, .selective = selective};
    data::Batch b = data::copying(o, 8, gen);
    CHECK(b.input.sizes() == tg::Shape{8, 46});
    CHECK(b.target.sizes() == tg::Shape{8, 46});
    bool scattered = false;
    for (int64_t r = 0; r < 8; ++r) {
      auto x = row(b.input, r), y = row(b.target, r);
      std::vector<int64_t> data_tokens, data_pos;
      for (int64_t t = 0; t < 40; ++t)
        if (x[static_cast<size_t>(t)] != 0) data_tokens.push_back(x[static_cast<size_t>(t)]), data_pos.push_back(t);
      REQUIRE(data_tokens.size() == 6);
      for (int64_t tok : data_tokens) CHECK((tok >= 2 && tok < 10));
      if (!selective) CHECK(data_pos.back() == 5);
      scattered = scattered || data_pos.back() > 5;
      for (int64_t i = 0; i < 6; ++i) {
        CHECK(x[static_cast<size_t>(40 + i)] == 1);  // markers
        CHECK(y[static_cast<size_t>(40 + i)] == data_tokens[static_cast<size_t>(i)]);
      }
      for (int64_t t = 0; t < 40; ++t) CHECK(y[static_cast<size_t>(t)] == data::kIgnore);
    }
    CHECK(scattered == selective);
  }
  tg::Generator g1(5), g2(5);
  CHECK(tg::equal(data::selective_copying({}, 4, g1).input, data::selective_copying({}, 4, g2).input));
  CHECK_THROWS_AS(data::copying({.num_tokens = 300, .seq_len = 256}, 1, gen), tg::Error);
}

TEST_CASE("induction heads: the trigger twice, the answer is the token after the first") {
  tg::Generator gen(2);
  data::Batch b = data::induction_heads({.vocab_size = 16, .seq_len = 64}, 16, gen);
  for (int64_t r = 0; r < 16; ++r) {
    auto x = row(b.input, r), y = row(b.target, r);
    std::vector<int64_t> at;
    for (int64_t t = 0; t < 64; ++t)
      if (x[static_cast<size_t>(t)] == 0) at.push_back(t);
    REQUIRE(at.size() == 2);
    CHECK(at[1] == 63);
    CHECK(at[0] <= 61);
    CHECK(y[63] == x[static_cast<size_t>(at[0] + 1)]);
    CHECK(std::count(y.begin(), y.end(), data::kIgnore) == 63);
  }
}

TEST_CASE("MQAR: keys from the lower half, values from the upper, each query answered by its pair") {
  tg::Generator gen(3);
  const data::MqarOptions o{.vocab_size = 128, .num_kv_pairs = 8, .seq_len = 64};
  data::Batch b = data::mqar(o, 32, gen);
  CHECK(b.input.sizes() == tg::Shape{32, 64});
  std::map<int64_t, int64_t> gap_hist;
  for (int64_t r = 0; r < 32; ++r) {
    auto x = row(b.input, r), y = row(b.target, r);
    std::map<int64_t, int64_t> kv;
    for (int64_t i = 0; i < 8; ++i) {
      const int64_t k = x[static_cast<size_t>(2 * i)], v = x[static_cast<size_t>(2 * i + 1)];
      CHECK((k >= 1 && k < 64));
      CHECK((v >= 64 && v < 128));
      CHECK(kv.emplace(k, v).second);  // distinct keys
    }
    std::set<int64_t> queried;
    for (int64_t t = 0; t < 64; ++t) {
      if (y[static_cast<size_t>(t)] == data::kIgnore) continue;
      CHECK(t >= 16);
      CHECK((t - 16) % 2 == 0);
      const int64_t k = x[static_cast<size_t>(t)];
      REQUIRE(kv.count(k));
      CHECK(y[static_cast<size_t>(t)] == kv[k]);
      queried.insert(k);
      ++gap_hist[(t - 16) / 2];
    }
    CHECK(queried.size() == 8);  // every key asked once
    for (int64_t t = 16; t < 64; ++t) CHECK((x[static_cast<size_t>(t)] >= 0 && x[static_cast<size_t>(t)] < 128));
  }
  // 8 of 24 gaps per row, nearer ones likelier: gap 0 is taken more often than the last.
  CHECK(gap_hist[0] > gap_hist[23]);
  tg::Generator g0(3);
  data::Batch zeros = data::mqar({.vocab_size = 128, .num_kv_pairs = 8, .seq_len = 64, .random_non_queries = false},
                                 4, g0);
  auto x0 = row(zeros.input, 0), y0 = row(zeros.target, 0);
  for (int64_t t = 16; t < 64; ++t)
    if (y0[static_cast<size_t>(t)] == data::kIgnore) CHECK(x0[static_cast<size_t>(t)] == 0);
  CHECK_THROWS_WITH_AS(data::mqar({.vocab_size = 128, .num_kv_pairs = 8, .seq_len = 20}, 1, gen), Contains("too "
                       "short"), tg::Error);
  CHECK_THROWS_AS(data::mqar({.vocab_size = 16, .num_kv_pairs = 8, .seq_len = 64}, 1, gen), tg::Error);
}

TEST_CASE("adding problem: two markers, one per half, target their sum") {
  tg::Generator gen(4);
  data::Batch b = data::adding_problem({.seq_len = 50}, 16, gen);
  CHECK(b.input.sizes() == tg::Shape{16, 50, 2});
  CHECK(b.input.dtype() == tg::kFloat32);
  for (int64_t r = 0; r < 16; ++r) {
    auto x = b.input.select(0, r).contiguous().to_vector<float>();
    std::vector<int64_t> marks;
    for (int64_t t = 0; t < 50; ++t)
      if (x[static_cast<size_t>(2 * t + 1)] == 1.0f) marks.push_back(t);
    REQUIRE(marks.size() == 2);
    CHECK(marks[0] < 25);
    CHECK(marks[1] >= 25);
    float sum = x[static_cast<size_t>(2 * marks[0])] + x[static_cast<size_t>(2 * marks[1])];
    CHECK(b.target.to_vector<float>()[static_cast<size_t>(r)] == sum);
  }
}

TEST_CASE("sorting: targets point at the inputs in increasing order") {
  tg::Generator gen(5);
  data::Batch b = data::sorting({.length = 12}, 8, gen);
  for (int64_t r = 0; r < 8; ++r) {
    auto x = b.input.select(0, r).contiguous().to_vector<float>();
    auto p = row(b.target, r);
    std::vector<int64_t> sorted_p = p;
    std::sort(sorted_p.begin(), sorted_p.end());
    for (int64_t i = 0; i < 12; ++i) CHECK(sorted_p[static_cast<size_t>(i)] == i);  // a permutation
    for (int64_t i = 1; i < 12; ++i)
      CHECK(x[static_cast<size_t>(p[static_cast<size_t>(i - 1)])] <= x[static_cast<size_t>(p[static_cast<size_t>(i)])]);
  }
}

TEST_CASE("seq2seq digits: reversal and addition answers, padding and lengths") {
  using V = data::Seq2SeqVocab;
  tg::Generator gen(6);
  for (auto task : {data::Seq2SeqTask::Reverse, data::Seq2SeqTask::Addition}) {
    data::Batch b = data::seq2seq_digits({.task = task, .min_digits = 1, .max_digits = 6}, 20, gen);
    auto in_len = b.input_lengths.to_vector<int64_t>(), out_len = b.target_lengths.to_vector<int64_t>();
    for (int64_t r = 0; r < 20; ++r) {
      auto src = row(b.input, r), tgt = row(b.target, r);
      for (size_t i = static_cast<size_t>(in_len[static_cast<size_t>(r)]); i < src.size(); ++i)
        CHECK(src[i] == V::kPad);
      src.resize(static_cast<size_t>(in_len[static_cast<size_t>(r)]));
      tgt.resize(static_cast<size_t>(out_len[static_cast<size_t>(r)]));
      CHECK(tgt.front() == V::kBos);
      CHECK(tgt.back() == V::kEos);
      const std::string s = V::to_string(src), t = V::to_string(tgt);
      const std::string answer = t.substr(5, t.size() - 10);  // strip <bos> and <eos>
      if (task == data::Seq2SeqTask::Reverse) {
        CHECK(std::string(s.rbegin(), s.rend()) == answer);
      } else {
        const size_t plus = s.find('+');
        REQUIRE(plus != std::string::npos);
        CHECK(std::stoll(s.substr(0, plus)) + std::stoll(s.substr(plus + 1)) == std::stoll(answer));
        CHECK((s[0] != '0' || s[1] == '+'));  // no leading zeros
      }
    }
  }
  CHECK(V::to_string({V::kBos, 4, V::kPlus, 12, V::kEos, V::kPad}) == "<bos>1+9<eos>");
}

TEST_CASE("ListOps: targets equal an independent evaluation, lengths within bounds") {
  using V = data::ListOpsVocab;
  CHECK(V::evaluate({V::kMax, 3, 10, V::kMin, 5, 8, V::kClose, 1, V::kClose}) == 9);  // [MAX 2 9 [MIN 4 7 ] 0 ]
  CHECK(V::evaluate({V::kMed, 2, 5, 8, 9, V::kClose}) == 5);                          // median(1 4 7 8) = 5.5 -> 5
  CHECK(V::evaluate({V::kSumMod, 10, 9, 4, V::kClose}) == 0);                          // (9 + 8 + 3) % 10
  CHECK(V::to_string({V::kMax, 3, 10, V::kClose}) == "[MAX 2 9 ]");
  CHECK_THROWS_AS(V::evaluate({V::kMax, 3}), tg::Error);
  CHECK_THROWS_AS(V::evaluate({3, 4}), tg::Error);

  tg::Generator gen(7);
  const data::ListOpsOptions o{.max_depth = 6, .max_args = 5, .min_length = 20, .max_length = 120};
  data::Batch b = data::listops(o, 16, gen);
  auto lens = b.input_lengths.to_vector<int64_t>(), targets = b.target.to_vector<int64_t>();
  for (int64_t r = 0; r < 16; ++r) {
    CHECK((lens[static_cast<size_t>(r)] >= 20 && lens[static_cast<size_t>(r)] <= 120));
    auto toks = row(b.input, r);
    toks.resize(static_cast<size_t>(lens[static_cast<size_t>(r)]));
    CHECK(V::evaluate(toks) == targets[static_cast<size_t>(r)]);
  }
  data::Batch lra = data::listops({}, 2, gen);  // LRA's lengths (500..2000) are reachable quickly too
  for (int64_t len : lra.input_lengths.to_vector<int64_t>()) CHECK((len >= 500 && len <= 2000));
}

TEST_CASE("TaskStream: seeded, and its state resumes the same batches") {
  auto task = [](tg::Generator& g) { return data::mqar({.vocab_size = 64, .num_kv_pairs = 4, .seq_len = 32}, 4, g); };
  data::TaskStream a(task, 42), b(task, 42);
  for (int k = 0; k < 3; ++k) CHECK(tg::equal(a.next().input, b.next().input));
  data::TaskStream resumed(task, 0);
  resumed.load_state_dict(a.state_dict());
  data::Batch x = resumed.next(), y = a.next();
  CHECK(x.index == 3);
  CHECK(tg::equal(x.input, y.input));
  CHECK(tg::equal(x.target, y.target));
  CHECK_THROWS_AS(resumed.load_state_dict({}), tg::Error);
}

}  // TEST_SUITE("data")
