// tg::Error and the checking macro every public op uses to reject bad input with a clear message.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdexcept>
#include <string>

namespace tg {

// Thrown for every bad call: the message names the op and the shapes, dtypes or devices involved.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace tg

// TG_CHECK(cond, "op: {} ...", args...) throws tg::Error with the formatted message when cond is false.
#define TG_CHECK(cond, ...)                                       \
  do {                                                            \
    if (!(cond)) [[unlikely]] throw ::tg::Error(fmt::format(__VA_ARGS__)); \
  } while (0)

#define TG_ERROR(...) throw ::tg::Error(fmt::format(__VA_ARGS__))
