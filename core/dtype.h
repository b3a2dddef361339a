// Element types, their sizes and names, type promotion, and dispatch from a runtime dtype to a C++ type.
#pragma once
#include <cstddef>
#include <ostream>
#include <cstdint>
#include <string>
#include <type_traits>
#include <cstdint>

#include "core/error.h"

namespace tg {

enum class DType : uint8_t { Bool, Int64, Float32, Float64 };

inline constexpr DType kBool = DType::Bool;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
// PyTorch spellings, so code carries over.
inline constexpr DType kFloat = DType::Float32;
inline constexpr DType kDouble = DType::Float64;
inline constexpr DType kLong = DType::Int64;

inline size_t element_size(DType t) {
  switch (t) {
    case DType::Bool: return 1;
    case DType::Int64: return 8;
    case DType::Float32: return 4;
    case DType::Float64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::Int64: return "int64";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "?";
}

inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }

// The dtype both operands are computed in, ordered bool < int64 < float32 < float64 as in PyTorch.
inline DType promote_types(DType a, DType b) { return static_cast<uint8_t>(a) > static_cast<uint8_t>(b) ? a : b; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }

// A double as T without undefined behaviour: integers saturate (NaN becomes 0), bool is v != 0.
template <class T> T scalar_cast(double v) {
  if constexpr (std::is_same_v<T, bool>) return v != 0;
  else if constexpr (std::is_floating_point_v<T>) return static_cast<T>(v);
  else {
    if (v != v) return 0;
    if (v >= 9.2233720368547748e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return static_cast<T>(v);
  }
}

// Calls f.template operator()<T>() with the C++ type of dtype t: dispatch(t, [&]<class T>() { ... }).
template <class F> decltype(auto) dispatch(DType t, F&& f) {
  switch (t) {
    case DType::Bool: return f.template operator()<bool>();
    case DType::Int64: return f.template operator()<int64_t>();
    case DType::Float32: return f.template operator()<float>();
    case DType::Float64: return f.template operator()<double>();
  }
  TG_ERROR("dispatch: unknown dtype");
}

// As dispatch, for floating dtypes only; op names the caller in the error.
template <class F> decltype(auto) dispatch_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: return f.template operator()<float>();
    case DType::Float64: return f.template operator()<double>();
    default: TG_ERROR("{}: expected a floating dtype (float32 or float64), got {}", op, dtype_name(t));
  }
}

inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

}  // namespace tg

template <> struct fmt::formatter<tg::DType> : fmt::formatter<std::string_view> {
  auto format(tg::DType t, format_context& ctx) const { return fmt::formatter<std::string_view>::format(tg::dtype_name(t), ctx); }
};
