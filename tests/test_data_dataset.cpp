// LM datasets and the prefetching loader: split sizes, window and lane layouts, seeded determinism, state that
// resumes at the right batch, and a loader whose order is the stream's own.
#include <doctest/doctest.h>

#include <numeric>
#include <set>
#include <vector>

#include "tapegrad.h"

using doctest::Contains;
namespace data = tg::data;

namespace {

// Tokens 0, 1, 2, ...: a batch then says exactly where each of its windows came from.
std::vector<int64_t> iota_tokens(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

bool same_batch(const data::Batch& a, const data::Batch& b) {
  return tg::equal(a.input, b.input) && tg::equal(a.target, b.target) && a.epoch == b.epoch && a.index == b.index;
}

// A stream whose next() fails at batch `fail_at`.
struct FailingStream : data::BatchStream {
  int64_t i = 0, fail_at;
  explicit FailingStream(int64_t f) : fail_at(f) {}
  data::Batch next() override {
    TG_CHECK(i != fail_at, "FailingStream: batch {} is broken", i);
    data::Batch b;
    b.input = tg::full({1}, static_cast<double>(i), tg::kInt64);
    b.index = i++;
    return b;
  }
  data::StateDict state_dict() const override { return {{"index", data::state_scalar(i)}}; }
  void load_state_dict(const data::StateDict& s) override { i = data::state_int(s, "index", "FailingStream"); }
};

}  // namespace

TEST_SUITE("data") {

TEST_CASE("split_tokens: contiguous, sizes by rounding") {
  auto s = data::split_tokens(iota_tokens(1000), 0.1);
  CHECK(s.train.size() == 900);
  CHECK(s.val.size() == 100);
  CHECK(s.train.back() == 899);
  CHECK(s.val.front() == 900);
  CHECK(data::split_tokens(iota_tokens(1001), 0.1).val.size() == 100);
  CHECK(data::split_tokens(iota_tokens(10), 0.0).train.size() == 10);
  CHECK_THROWS_AS(data::split_tokens(iota_tokens(10), 1.0), tg::Error);
}

TEST_CASE("LMWindowStream: shifted targets, each window once per epoch, seeded") {
  const int64_t n = 10000, B = 4, T = 16;
  data::LMWindowStream s(iota_tokens(n), {.batch_size = B, .seq_len = T, .seed = 7});
  const int64_t per_epoch = s.batches_per_epoch();
  CHECK(per_epoch >= (n - T) / T / B);
  std::set<int64_t> starts;
  for (int64_t k = 0; k < per_epoch; ++k) {
    data::Batch b = s.next();
    CHECK(b.epoch == 0);
    CHECK(b.index == k);
    CHECK(b.input.sizes() == tg::Shape{B, T});
    auto x = b.input.to_vector<int64_t>(), y = b.target.to_vector<int64_t>();
    for (int64_t r = 0; r < B; ++r) {
      const int64_t start = x[static_cast<size_t>(r * T)];
      CHECK(starts.insert(start).second);  // no window twice in an epoch
      CHECK(start % T == *starts.begin() % T);  // one offset per epoch
      for (int64_t t = 0; t < T; ++t) {
        CHECK(x[static_cast<size_t>(r * T + t)] == start + t);
        CHECK(y[static_cast<size_t>(r * T + t)] == start + t + 1);
      }
    }
  }
  CHECK(s.next().epoch == 1);

  // The same seed gives the same batches; another seed another order.
  data::LMWindowStream a(iota_tokens(n), {.batch_size = B, .seq_len = T, .seed = 1});
  data::LMWindowStream b(iota_tokens(n), {.batch_size = B, .seq_len = T, .seed = 1});
  data::LMWindowStream c(iota_tokens(n), {.batch_size = B, .seq_len = T, .seed = 2});
  bool differs = false;
  for (int k = 0; k < 5; ++k) {
    data::Batch ba = a.next(), bb = b.next(), bc = c.next();
    CHECK(same_batch(ba, bb));
    differs = differs || !tg::equal(ba.input, bc.input);
  }
  CHECK(differs);

  // Unshuffled, no offset: windows in corpus order.
  data::LMWindowStream plain(iota_tokens(n), {.batch_size = 2, .seq_len = T, .shuffle = false, .random_offset = false});
  CHECK(plain.next().input.to_vector<int64_t>()[static_cast<size_t>(T)] == T);
  CHECK_THROWS_WITH_AS(data::LMWindowStream(iota_tokens(50), {.batch_size = 4, .seq_len = 16}),
                       Contains("too few"), tg::Error);
}

TEST_CASE("LMWindowStream state resumes mid-epoch and across epochs") {
  const data::WindowOptions o{.batch_size = 3, .seq_len = 8, .seed = 11};
  data::LMWindowStream full(iota_tokens(2000), o);
  const int64_t per_epoch = full.batches_per_epoch();
  for (int64_t cut : {int64_t{0}, int64_t{5}, per_epoch, per_epoch + 3}) {
    data::LMWindowStream first(iota_tokens(2000), o), reference(iota_tokens(2000), o);
    for (int64_t k = 0; k < cut; ++k) first.next(), reference.next();
    data::LMWindowStream resumed(iota_tokens(2000), {.batch_size = 3, .seq_len = 8, .seed = 999});
    resumed.load_state_dict(first.state_dict());
    for (int k = 0; k < per_epoch + 2; ++k) CHECK(same_batch(resumed.next(), reference.next()));
  }
  data::LMWindowStream other(iota_tokens(2000), {.batch_size = 4, .seq_len = 8});
  CHECK_THROWS_WITH_AS(other.load_state_dict(full.state_dict()), Contains("resuming it would change the data"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(other.load_state_dict({}), Contains("config"), tg::Error);
}

TEST_CASE("LMLaneStream: lanes continue across batches, epochs wrap, all tokens when not dropping") {
  const int64_t n = 1001, B = 4, T = 10;  // lanes of 250 steps
  data::LMLaneStream s(iota_tokens(n), {.batch_size = B, .seq_len = T});
  CHECK(s.batches_per_epoch() == 25);
  CHECK(s.tokens_per_epoch() == 1000);
  data::Batch prev = s.next();
  CHECK(prev.input.to_vector<int64_t>()[static_cast<size_t>(T)] == 250);  // lane 1 starts at 250
  for (int64_t k = 1; k < 25; ++k) {
    data::Batch b = s.next();
    CHECK(b.index == k);
    for (int64_t r = 0; r < B; ++r)  // lane r of batch k picks up where batch k - 1 left off
      CHECK(b.input.to_vector<int64_t>()[static_cast<size_t>(r * T)] ==
            prev.target.to_vector<int64_t>()[static_cast<size_t>(r * T + T - 1)]);
    auto x = b.input.to_vector<int64_t>(), y = b.target.to_vector<int64_t>();
    for (size_t i = 0; i < x.size(); ++i) CHECK(y[i] == x[i] + 1);
    prev = b;
  }
  data::Batch wrapped = s.next();
  CHECK(wrapped.epoch == 1);
  CHECK(wrapped.index == 0);

  data::LMLaneStream ragged(iota_tokens(95), {.batch_size = 2, .seq_len = 10, .drop_last = false});
  CHECK(ragged.batches_per_epoch() == 5);  // lanes of 47 steps: 10, 10, 10, 10, 7
  int64_t scored = 0;
  for (int k = 0; k < 5; ++k) scored += ragged.next().target.numel();
  CHECK(scored == ragged.tokens_per_epoch());
  CHECK(scored == 94);

  data::LMLaneStream a(iota_tokens(n), {.batch_size = B, .seq_len = T});
  for (int k = 0; k < 30; ++k) a.next();
  data::LMLaneStream resumed(iota_tokens(n), {.batch_size = B, .seq_len = T});
  resumed.load_state_dict(a.state_dict());
  CHECK(same_batch(resumed.next(), a.next()));
  CHECK_THROWS_AS(data::LMLaneStream(iota_tokens(20), {.batch_size = 4, .seq_len = 10}), tg::Error);
}

TEST_CASE("PrefetchLoader: same order and state as the stream read directly") {
  const data::WindowOptions o{.batch_size = 5, .seq_len = 12, .seed = 3};
  for (size_t depth : {size_t{1}, size_t{2}, size_t{4}}) {
    data::LMWindowStream direct(iota_tokens(3000), o);
    data::PrefetchLoader loader(std::make_unique<data::LMWindowStream>(iota_tokens(3000), o), depth);
    CHECK(loader.state_dict().at("index").item<int64_t>() == 0);
    for (int k = 0; k < 120; ++k) {  // several epochs
      CHECK(same_batch(loader.next(), direct.next()));
      // The state is the one after the delivered batch, however far ahead the worker is.
      auto sd = loader.state_dict(), expect = direct.state_dict();
      CHECK(tg::equal(sd.at("index"), expect.at("index")));
      CHECK(tg::equal(sd.at("epoch"), expect.at("epoch")));
      CHECK(tg::equal(sd.at("rng.state"), expect.at("rng.state")));
    }
    // Resume a fresh loader from the saved state.
    auto fresh = std::make_unique<data::LMWindowStream>(iota_tokens(3000), o);
    fresh->load_state_dict(loader.state_dict());
    data::PrefetchLoader resumed(std::move(fresh), depth);
    for (int k = 0; k < 10; ++k) CHECK(same_batch(resumed.next(), direct.next()));
  }
}

TEST_CASE("PrefetchLoader: stream errors arrive in order, and shutdown with a full queue") {
  data::PrefetchLoader loader(std::make_unique<FailingStream>(3), 2);
  for (int64_t k = 0; k < 3; ++k) CHECK(loader.next().index == k);
  CHECK_THROWS_WITH_AS(loader.next(), Contains("batch 3 is broken"), tg::Error);
  CHECK_THROWS_WITH_AS(loader.next(), Contains("batch 3 is broken"), tg::Error);
  CHECK(loader.state_dict().at("index").item<int64_t>() == 3);
  {
    data::PrefetchLoader idle(std::make_unique<FailingStream>(-1), 3);  // never read: the worker waits, full
  }
  {
    data::PrefetchLoader partly(std::make_unique<FailingStream>(-1), 1);
    partly.next();
  }
  CHECK_THROWS_AS(data::PrefetchLoader(nullptr), tg::Error);
  CHECK_THROWS_AS(data::PrefetchLoader(std::make_unique<FailingStream>(-1), 0), tg::Error);
}

}  // TEST_SUITE("data")
