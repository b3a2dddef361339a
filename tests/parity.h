// Shared by the PyTorch parity tests (test_parity.cpp, test_nn_parity.cpp): loading a fixture file written by
// tests/make_fixtures.py into cases, and comparing a result with its reference (float64, max |diff| <= kTol).
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "tapegrad.h"

namespace tg_test {

using tg::Tensor;

#ifdef TG_FIXTURE_DIR
inline const std::string kFixtures = TG_FIXTURE_DIR;
#else
inline const std::string kFixtures = "tests/fixtures";
#endif

inline constexpr double kTol = 1e-10;

using Inputs = std::map<std::string, Tensor>;

struct Case {
  Inputs inputs;
  std::map<int, Tensor> outs;  // "out" is 0, "out1" is 1, ...
  Tensor w;
  Inputs grads;  // by input name
};

// Groups a fixture file's tensors by case name (the part of the key before the first '.').
inline std::map<std::string, Case> load_cases(const std::string& path) {
  std::map<std::string, Case> cases;
  for (auto& [key, t] : tg::io::load_safetensors(path)) {
    auto dot = key.find('.');
    REQUIRE_MESSAGE(dot != std::string::npos, "fixture key without a case name: ", key);
    Case& c = cases[key.substr(0, dot)];
    std::string field = key.substr(dot + 1);
    if (field == "w")
      c.w = t;
    else if (field.rfind("grad.", 0) == 0)
      c.grads[field.substr(5)] = t;
    else if (field.rfind("out", 0) == 0)
      c.outs[field == "out" ? 0 : std::stoi(field.substr(3))] = t;
    else
      c.inputs[field] = t;
  }
  return cases;
}

// Max |got - want| over all elements; infinite where exactly one side is NaN.
inline double max_diff(const Tensor& got, const Tensor& want) {
  auto g = got.to_vector<double>(), w = want.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) || std::isnan(w[i])) {
      if (!(std::isnan(g[i]) && std::isnan(w[i]))) return std::numeric_limits<double>::infinity();
      continue;
    }
    m = std::max(m, std::abs(g[i] - w[i]));
  }
  return m;
}

// Checks got against the fixture's want and appends " what=<max diff>" to summary.
inline void compare(const std::string& what, const Tensor& got, const Tensor& want, std::string& summary) {
  INFO(what);
  CHECK(got.defined());
  if (!got.defined()) return;
  CHECK_MESSAGE(got.sizes() == want.sizes(), "shape: got ", tg::shape_str(got.sizes()), ", want ",
                tg::shape_str(want.sizes()));
  CHECK_MESSAGE(got.dtype() == want.dtype(), "dtype: got ", tg::dtype_name(got.dtype()), ", want ",
                tg::dtype_name(want.dtype()));
  if (got.sizes() != want.sizes()) return;
  double d = max_diff(got, want);
  CHECK_MESSAGE(d <= kTol, "max |diff| = ", d, "\ngot:  ", got.str(), "\nwant: ", want.str());
  summary += fmt::format(" {}={:.1e}", what, d);
}

}  // namespace tg_test
