// Next-token sampling over plain vectors: each row of logits is small (a vocabulary), so a sort per row is cheap
// and keeps the top-k / top-p rules readable.
#include "nn/generation.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace tg::nn {

Tensor sample_next(const Tensor& logits, const SamplingOptions& o, Generator& gen) {
  const char* op = "sample_next";
  TG_CHECK(logits.defined() && logits.is_floating_point() && (logits.dim() == 1 || logits.dim() == 2) &&
               logits.size(-1) > 0,
           "{}: logits must be floating [B, V] or [V] with V > 0, got {}", op,
           logits.defined() ? shape_str(logits.sizes()) : "undefined");
  TG_CHECK(o.greedy || o.temperature > 0, "{}: temperature must be > 0, got {}", op, o.temperature);
  TG_CHECK(o.top_k >= 0, "{}: top_k must be >= 0, got {}", op, o.top_k);
  TG_CHECK(o.top_p > 0 && o.top_p <= 1, "{}: top_p must be in (0, 1], got {}", op, o.top_p);
  NoGradGuard ng;
  Tensor rows = logits.dim() == 1 ? logits.unsqueeze(0) : logits;
  const int64_t B = rows.size(0), V = rows.size(1);
  std::vector<double> x = rows.to_vector<double>();
  std::vector<int64_t> out(static_cast<size_t>(B));
  std::vector<int64_t> order(static_cast<size_t>(V));
  std::vector<double> p(static_cast<size_t>(V));
  for (int64_t b = 0; b < B; ++b) {
    const double* row = x.data() + b * V;
    std::iota(order.begin(), order.end(), int64_t{0});
    // most likely first; ties by index, so the result does not depend on the sort's stability
    std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return row[i] > row[j] || (row[i] == row[j] && i < j); });
    if (o.greedy) {
      out[static_cast<size_t>(b)] = order[0];
      continue;
    }
    int64_t keep = o.top_k > 0 ? std::min(o.top_k, V) : V;
    const double m = row[order[0]];
    double total = 0;
    for (int64_t r = 0; r < keep; ++r) total += p[static_cast<size_t>(r)] = std::exp((row[order[r]] - m) / o.temperature);
    if (o.top_p < 1) {
      double c = 0;
      for (int64_t r = 0; r < keep; ++r) {
        c += p[static_cast<size_t>(r)] / total;
        if (c >= o.top_p) {
          keep = r + 1;
          break;
        }
      }
      total = 0;
      for (int64_t r = 0; r < keep; ++r) total += p[static_cast<size_t>(r)];
    }
    const double u = gen.uniform() * total;
    double c = 0;
    int64_t pick = order[keep - 1];
    for (int64_t r = 0; r < keep; ++r) {
      c += p[static_cast<size_t>(r)];
      if (u < c) {
        pick = order[r];
        break;
      }
    }
    out[static_cast<size_t>(b)] = pick;
  }
  Tensor t = tensor(out, {B});
  return logits.dim() == 1 ? t.reshape({}) : t;
}

}  // namespace tg::nn
