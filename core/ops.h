// The public ops, in namespace tg, named and behaving as in PyTorch's C++ frontend.
// Each family is defined, with its backward formulas, in autograd/functions/<family>.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "core/tensor.h"

namespace tg {

// ---- factories (core/factory.cpp)
Tensor empty_like(const Tensor& t);
Tensor zeros(const Shape& sizes, TensorOptions opt = {});
Tensor ones(const Shape& sizes, TensorOptions opt = {});
Tensor full(const Shape& sizes, double value, TensorOptions opt = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar_tensor(double value, TensorOptions opt = {});
Tensor arange(double end, TensorOptions opt = kInt64);
Tensor arange(double start, double end, double step = 1, TensorOptions opt = kInt64);
Tensor linspace(double start, double end, int64_t steps, TensorOptions opt = {});
Tensor eye(int64_t n, TensorOptions opt = {});
Tensor rand(const Shape& sizes, TensorOptions opt = {});   // uniform [0, 1)
Tensor randn(const Shape& sizes, TensorOptions opt = {});  // standard normal
Tensor randint(int64_t low, int64_t high, const Shape& sizes, TensorOptions opt = kInt64);  // [low, high)
Tensor rand_like(const Tensor& t);
Tensor randn_like(const Tensor& t);
Tensor randperm(int64_t n, TensorOptions opt = kInt64);
// Copies values into a new tensor of the given shape; the dtype follows T. Without a shape: 1-d, except that a
// single value gives a 0-d tensor (pass {1} for a 1-element 1-d tensor; torch.tensor([v]) is 1-d).
template <class T> Tensor tensor(const std::vector<T>& values, const Shape& sizes = {}, TensorOptions opt = {});
template <> Tensor tensor<int>(const std::vector<int>& values, const Shape& sizes, TensorOptions opt);
Tensor tensor(const std::vector<bool>& values, const Shape& sizes = {}, TensorOptions opt = {});
// Wraps memory the caller owns (no copy). With a deleter, the tensor frees it when the last view goes.
Tensor from_blob(void* data, const Shape& sizes, TensorOptions opt = {});
Tensor from_blob(void* data, const Shape& sizes, std::function<void(void*)> deleter, TensorOptions opt = {});

// ---- views (autograd/functions/view.cpp)
Tensor view(const Tensor& x, const Shape& sizes);
Tensor reshape(const Tensor& x, const Shape& sizes);
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);
Tensor transpose(const Tensor& x, int64_t a, int64_t b);
Tensor permute(const Tensor& x, const Shape& dims);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor expand(const Tensor& x, const Shape& sizes);  // -1 keeps a dim; new dims and size-1 dims get stride 0
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
std::vector<Tensor> unbind(const Tensor& x, int64_t dim = 0);

// ---- copies and conversion (autograd/functions/copy.cpp)
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
Tensor to(const Tensor& x, DType dtype);
Tensor to(const Tensor& x, Device device);

// ---- elementwise unary (autograd/functions/unary.cpp); floating dtypes unless noted
Tensor neg(const Tensor& x);   // any numeric dtype
Tensor abs(const Tensor& x);   // any numeric dtype
Tensor sign(const Tensor& x);  // not differentiable (zero gradient)
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x, const std::string& approximate = "none");  // "none" (erf) or "tanh"
Tensor silu(const Tensor& x);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
Tensor square(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_min(const Tensor& x, double lo);
Tensor clamp_max(const Tensor& x, double hi);
Tensor logical_not(const Tensor& x);  // -> bool

// ---- elementwise binary with broadcasting (autograd/functions/binary.cpp)
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor rsub(const Tensor& a, double b);  // b - a
Tensor rdiv(const Tensor& a, double b);  // b / a
// Comparisons and logic return bool tensors and are not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
Tensor outer(const Tensor& a, const Tensor& b);
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
bool equal(const Tensor& a, const Tensor& b);  // same shape and values

// ---- reductions over any dims, with keepdim (autograd/functions/reduce.cpp)
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor max(const Tensor& x);
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);  // values, indices
Tensor min(const Tensor& x);
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x);  // index into the flattened tensor
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor var(const Tensor& x, const Shape& dims, int64_t correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t dim);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- linear algebra (autograd/functions/matmul.cpp)
// torch.matmul semantics: 1-d operands are promoted and squeezed back, leading dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);

// ---- indexing and joining (autograd/functions/index.cpp)
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor embedding(const Tensor& weight, const Tensor& indices);  // weight [V, D], indices any shape (int64)
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);  // int64 result, as in PyTorch
Tensor cat(const std::vector<Tensor>& xs, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);

// ---- threads (backends/cpu/parallel.cpp)
void set_num_threads(int n);  // OpenMP and BLAS threads; OMP_NUM_THREADS sets the default
int get_num_threads();

}  // namespace tg
