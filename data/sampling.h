// Integer sampling over a tg::Generator for the datasets and synthetic tasks: the few draws they need, each made
// from the generator's 64-bit stream in one documented way, so a seed gives the same data on every platform
// (std::uniform_int_distribution and std::shuffle are implementation-defined).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/random.h"

namespace tg::data {

// Uniform in [0, n), by Lemire's multiply-shift (bias below n / 2^64, far under anything measurable).
inline int64_t uniform_int(Generator& g, int64_t n) {
  TG_CHECK(n > 0, "uniform_int: n must be positive, got {}", n);
  return static_cast<int64_t>((static_cast<unsigned __int128>(g.next_u64()) * static_cast<uint64_t>(n)) >> 64);
}

// Uniform in [lo, hi].
inline int64_t uniform_int(Generator& g, int64_t lo, int64_t hi) {
  TG_CHECK(lo <= hi, "uniform_int: empty range [{}, {}]", lo, hi);
  return lo + uniform_int(g, hi - lo + 1);
}

// Fisher-Yates, from the back.
template <class T> void shuffle(std::vector<T>& v, Generator& g) {
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) std::swap(v[i], v[uniform_int(g, i + 1)]);
}

// k distinct values of [0, n) in random order (a partial Fisher-Yates over 0..n-1).
inline std::vector<int64_t> sample_distinct(Generator& g, int64_t n, int64_t k) {
  TG_CHECK(k >= 0 && k <= n, "sample_distinct: cannot draw {} distinct values from {}", k, n);
  std::vector<int64_t> pool(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pool[static_cast<size_t>(i)] = i;
  for (int64_t i = 0; i < k; ++i)
    std::swap(pool[static_cast<size_t>(i)], pool[static_cast<size_t>(uniform_int(g, i, n - 1))]);
  pool.resize(static_cast<size_t>(k));
  return pool;
}

}  // namespace tg::data
