// Shapes and strides: element counts, contiguous strides, dim wrapping and NumPy broadcasting.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tg {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);           // "[2, 3]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& sizes);    // row-major, in elements
// Wraps a possibly negative dim into [0, ndim); op names the caller in the error.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// The broadcast shape of a and b (NumPy rules), or a tg::Error naming op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Strides that view a tensor of (sizes, strides) as `target` (broadcast: stride 0 on new or size-1 dims).
Shape broadcast_strides(const Shape& sizes, const Shape& strides, const Shape& target);

}  // namespace tg
