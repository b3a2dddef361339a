// metrics.jsonl: the record of a training run, one JSON object per line, e.g.
//   {"step": 100, "loss": 2.01, "lr": 0.002, "tokens_per_s": 19412.5, "wall_s": 10.4}
//   {"step": 500, "val_loss": 1.71, "val_ppl": 5.53, "wall_s": 52.0}
// Every line has "step" and "wall_s"; the rest is what the recipe logged (the names: loss, lr,
// tokens_per_s, val_loss, val_ppl or accuracy). recipes/plot.py draws learning curves from these files.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace tg::recipes {

class MetricsWriter {
 public:
  MetricsWriter() = default;  // writes nothing (no --out)
  // Opens path. resume_step < 0 starts a new file; otherwise the file's records with step <= resume_step are kept
  // and the rest dropped (they belong to the part of an interrupted run that the checkpoint does not cover), so a
  // resumed run leaves the file an uninterrupted run would have written.
  explicit MetricsWriter(const std::string& path, int64_t resume_step = -1);
  bool enabled() const { return out_.is_open(); }
  const std::string& path() const { return path_; }

  using Field = std::pair<std::string, double>;
  // Writes {"step": step, <fields>, "wall_s": wall_s} and flushes, so a crash loses nothing written. Non-finite
  // values are left out (JSON has no NaN).
  void write(int64_t step, const std::vector<Field>& fields, double wall_s);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace tg::recipes
