// The seeded random generator behind rand, randn, randint, dropout and init.
// One generator per process, drawn from serially, so the same seed gives the same bits at any thread count.
#pragma once
#include <cstdint>

namespace tg {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x853c49e6748fea9bULL) { seed_(seed); }
  void seed_(uint64_t seed);
  uint64_t next_u64();       // xoshiro256**
  double uniform();          // [0, 1) with 53 random bits
  double normal();           // standard normal (Box-Muller, cached pair)
  uint64_t state_hash() const;
  // Raw state, for checkpoints that resume bit-identically.
  struct State { uint64_t s[4]; bool has_spare; double spare; };
  State get_state() const { return {{s_[0], s_[1], s_[2], s_[3]}, has_spare_, spare_}; }
  void set_state(const State& st);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace tg
