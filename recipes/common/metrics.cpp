// The JSON Lines metrics writer, and the trimming of an interrupted run's records on resume.
#include "recipes/common/metrics.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace tg::recipes {

MetricsWriter::MetricsWriter(const std::string& path, int64_t resume_step) : path_(path) {
  std::string kept;
  if (resume_step >= 0 && std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::string l;
    while (std::getline(in, l)) {
      auto j = nlohmann::json::parse(l, nullptr, /*allow_exceptions=*/false);
      // A torn last line (the process died mid-write) is dropped like any record past the checkpoint.
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"] <= resume_step)
        kept += l + "\n";
    }
  }
  out_.open(path, std::ios::trunc);
  TG_CHECK(out_.is_open(), "metrics: cannot write '{}'", path);
  out_ << kept;
  out_.flush();
}

void MetricsWriter::write(int64_t step, const std::vector<Field>& fields, double wall_s) {
  if (!enabled()) return;
  nlohmann::ordered_json j;
  j["step"] = step;
  for (const auto& [k, v] : fields)
    if (std::isfinite(v)) j[k] = v;
  j["wall_s"] = std::round(wall_s * 1000) / 1000;
  out_ << j.dump() << "\n";
  out_.flush();
  TG_CHECK(out_.good(), "metrics: write to '{}' failed", path_);
}

}  // namespace tg::recipes
