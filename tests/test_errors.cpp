// Bad calls throw tg::Error with a message that names the op and the shapes or dtypes involved.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tapegrad.h"

namespace {

using tg::Shape;
using tg::Tensor;

// CHECK_THROWS_AS f() tg::Error, and the message contains every one of parts.
#define CHECK_ERROR(expr, ...)                                                                          \
  do {                                                                                                  \
    CHECK_THROWS_AS(expr, tg::Error);                                                                   \
    check_message([&] { expr; }, {__VA_ARGS__});                                                        \
  } while (0)

template <class F> void check_message(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
  } catch (const tg::Error& e) {
    std::string msg = e.what();
    for (const char* p : parts)
      CHECK_MESSAGE(msg.find(p) != std::string::npos, "'" << std::string(p) << "' not in: " << msg);
    return;
  } catch (...) {
  }
}

Tensor f32(Shape s) { return tg::zeros(s); }
Tensor f64(Shape s) { return tg::zeros(s, tg::kFloat64); }
Tensor i64(std::vector<int64_t> v) { return tg::tensor(v); }

}  // namespace

TEST_SUITE("errors") {

TEST_CASE("errors: elementwise shape mismatch") {
  CHECK_ERROR(tg::add(f32({2, 3}), f32({4})), "add", "[2, 3]", "[4]", "broadcast");
  CHECK_ERROR(f32({2, 3}) + f32({3, 2}), "add", "[2, 3]", "[3, 2]");
  CHECK_ERROR(tg::mul(f32({5}), f32({4})), "mul", "[5]", "[4]");
  CHECK_ERROR(tg::sub(f32({2, 1, 3}), f32({2, 2})), "sub", "[2, 1, 3]", "[2, 2]");
  CHECK_ERROR(tg::div(f32({3}), f32({0})), "div", "[3]", "[0]");
  CHECK_ERROR(tg::maximum(f32({2}), f32({3})), "maximum", "[2]", "[3]");
  CHECK_ERROR(tg::eq(f32({2}), f32({3})), "eq", "[2]", "[3]");
  CHECK_ERROR(tg::where(tg::ones({2}, tg::kBool), f32({3}), f32({3})), "where", "[2]", "[3]");
  CHECK_ERROR(tg::where(f32({3}), f32({3}), f32({3})), "where", "bool", "float32");
  CHECK_ERROR(tg::masked_fill(f32({3}), tg::ones({2, 3}, tg::kBool), 0.0), "masked_fill", "[2, 3]", "[3]");
  CHECK_ERROR(tg::masked_fill(f32({3}), f32({3}), 0.0), "masked_fill", "bool", "float32");
  CHECK_ERROR(tg::outer(f32({2, 2}), f32({3})), "outer", "[2, 2]", "[3]");
  Tensor a = f32({2, 3});
  CHECK_ERROR(a.add_(f32({4, 2, 3})), "add_", "[4, 2, 3]", "[2, 3]");
  CHECK_ERROR(a.copy_(f32({3, 3})), "copy_", "[3, 3]", "[2, 3]");
}

TEST_CASE("errors: matmul") {
  CHECK_ERROR(tg::matmul(f32({2, 3}), f32({4, 5})), "matmul: shapes [2, 3] and [4, 5] cannot be multiplied");
  CHECK_ERROR(tg::matmul(f32({3}), f32({4})), "matmul", "[3]", "[4]");
  CHECK_ERROR(tg::matmul(f32({2, 3}), f32({2})), "matmul", "[2, 3]", "[2]");
  CHECK_ERROR(tg::matmul(f32({2, 2, 3}), f32({3, 3, 4})), "matmul", "batch", "[2, 2, 3]", "[3, 3, 4]");
  CHECK_ERROR(tg::matmul(f32({}), f32({3})), "matmul", "[]", "[3]");
  CHECK_ERROR(tg::matmul(f32({2, 3}), f64({3, 4})), "matmul", "float32", "float64");
  CHECK_ERROR(tg::matmul(tg::ones({2, 2}, tg::kBool), tg::ones({2, 2}, tg::kBool)), "matmul", "bool");
  CHECK_ERROR(tg::mm(f32({2, 3, 4}), f32({4, 5})), "mm", "[2, 3, 4]", "[4, 5]");
  CHECK_ERROR(tg::mm(f32({2, 3}), f32({4, 5})), "mm", "[2, 3]", "[4, 5]");
  CHECK_ERROR(tg::bmm(f32({2, 3, 4}), f32({3, 4, 5})), "bmm", "[2, 3, 4]", "[3, 4, 5]");
  CHECK_ERROR(tg::bmm(f32({3, 4}), f32({4, 5})), "bmm", "[3, 4]");
}

TEST_CASE("errors: out-of-range dims") {
  Tensor x = f32({2, 3});
  CHECK_ERROR(x.sum(5), "sum", "dim 5", "2 dims");
  CHECK_ERROR(x.sum(-3), "sum", "dim -3");
  CHECK_ERROR(tg::sum(x, {0, 0}), "sum", "more than once");
  CHECK_ERROR(x.mean(2), "mean", "dim 2");
  CHECK_ERROR(tg::amax(x, {3}), "amax", "dim 3");
  CHECK_ERROR(x.max(2), "max", "dim 2");
  CHECK_ERROR(x.argmax(-3), "argmax", "dim -3");
  CHECK_ERROR(x.var(4), "var", "dim 4");
  CHECK_ERROR(x.logsumexp(2), "logsumexp", "dim 2");
  CHECK_ERROR(x.cumsum(2), "cumsum", "dim 2");
  CHECK_ERROR(x.softmax(2), "softmax", "dim 2");
  CHECK_ERROR(x.log_softmax(-3), "log_softmax", "dim -3");
  CHECK_ERROR(x.transpose(0, 2), "transpose", "dim 2", "2 dims");
  CHECK_ERROR(x.permute({0}), "permute", "[2, 3]");
  CHECK_ERROR(x.permute({0, 0}), "permute", "repeated");
  CHECK_ERROR(x.permute({0, 2}), "permute", "dim 2");
  CHECK_ERROR(x.unsqueeze(3), "unsqueeze", "dim 3");
  CHECK_ERROR(x.squeeze(2), "squeeze", "dim 2");
  CHECK_ERROR(x.flatten(1, 0), "flatten", "start_dim");
  CHECK_ERROR(x.size(2), "size", "dim 2");
  CHECK_ERROR(tg::cat({x, x}, 2), "cat", "dim 2");
  CHECK_ERROR(tg::stack({x, x}, 3), "stack", "dim 3");
  CHECK_ERROR(x.split(1, 2), "split", "dim 2");
  CHECK_ERROR(x.chunk(2, -3), "chunk", "dim -3");
  CHECK_ERROR(tg::unbind(x, 2), "unbind", "dim 2");
  CHECK_ERROR(x.select(2, 0), "select", "dim 2");
  CHECK_ERROR(x.narrow(2, 0, 1), "narrow", "dim 2");
  CHECK_ERROR(x.index_select(2, i64({0})), "index_select", "dim 2");
  CHECK_ERROR(x.gather(2, tg::zeros({2, 3}, tg::kInt64)), "gather", "dim 2");
  CHECK_ERROR(tg::scalar_tensor(1.0).sum(1), "sum", "dim 1", "0 dims");
}

TEST_CASE("errors: out-of-range indices") {
  Tensor x = f32({3, 4});
  CHECK_ERROR(x.index_select(0, i64({0, 3})), "index_select", "3", "size 3");
  CHECK_ERROR(x.index_select(1, i64({-5})), "index_select", "-5", "size 4");
  CHECK_ERROR(x.index_select(0, tg::tensor(std::vector<float>{0})), "index_select", "int64", "float32");
  CHECK_ERROR(x.index_select(0, tg::zeros({2, 2}, tg::kInt64)), "index_select", "[2, 2]");
  CHECK_ERROR(x.gather(1, tg::full({3, 1}, 4, tg::kInt64)), "gather", "4", "size 4");
  CHECK_ERROR(x.gather(1, tg::full({3, 1}, -1, tg::kInt64)), "gather", "-1");
  CHECK_ERROR(x.gather(1, tg::zeros({3}, tg::kInt64)), "gather", "[3]", "[3, 4]");
  CHECK_ERROR(x.gather(1, tg::zeros({4, 1}, tg::kInt64)), "gather", "[4, 1]", "[3, 4]");
  CHECK_ERROR(tg::scatter_add(x, 0, tg::full({1, 4}, 3, tg::kInt64), f32({1, 4})), "scatter_add", "3");
  CHECK_ERROR(tg::scatter_add(x, 0, tg::zeros({1, 4}, tg::kInt64), f64({1, 4})), "scatter_add", "float32", "float64");
  CHECK_ERROR(tg::scatter_add(x, 0, tg::zeros({2, 4}, tg::kInt64), f32({1, 4})), "scatter_add", "[2, 4]", "[1, 4]");
  CHECK_ERROR(tg::index_add(x, 0, i64({3}), f32({1, 4})), "index_add", "3");
  CHECK_ERROR(tg::index_add(x, 0, i64({0}), f32({2, 4})), "index_add", "[2, 4]", "[1, 4]");
  Tensor w = f32({6, 3});
  CHECK_ERROR(tg::embedding(w, i64({0, 6})), "embedding", "6", "size 6");
  CHECK_ERROR(tg::embedding(w, i64({-1})), "embedding", "-1");
  CHECK_ERROR(tg::embedding(w, tg::zeros({2})), "embedding", "int64", "float32");
  CHECK_ERROR(tg::embedding(f32({6}), i64({0})), "embedding", "[6]");
  CHECK_ERROR(x.select(0, 3), "select", "index 3", "size 3", "[3, 4]");
  CHECK_ERROR(x.select(1, -5), "select", "index -5", "[3, 4]");
  CHECK_ERROR(x.narrow(1, 2, 3), "narrow", "start 2", "length 3", "[3, 4]");
  CHECK_ERROR(x.narrow(0, -4, 1), "narrow", "[3, 4]");
  CHECK_ERROR(x.slice(0, 0, 2, 0), "slice", "step");
  CHECK_ERROR(tg::one_hot(i64({0, 3}), 3), "one_hot", "3");
}

TEST_CASE("errors: item, backward, data") {
  CHECK_ERROR(f32({2, 3}).item<float>(), "item", "6 elements", "[2, 3]");
  CHECK_ERROR(f32({0}).item<double>(), "item", "0 elements");
  Tensor x = tg::ones({2, 3}, tg::kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_ERROR(y.backward(), "backward", "[2, 3]");
  CHECK_ERROR(y.backward(f64({3, 2})), "backward", "[3, 2]", "[2, 3]");
  CHECK_ERROR(f32({1}).backward(), "backward", "does not require grad");
  CHECK_ERROR(f64({2}).data<float>(), "data<float32>", "float64");
  CHECK_ERROR(f32({2}).data<int64_t>(), "data<int64>", "float32");
  CHECK_ERROR(tg::tensor(std::vector<int64_t>{1}).requires_grad_(), "requires_grad_", "int64");
  CHECK_ERROR(tg::ones({1}, tg::kBool).requires_grad_(), "requires_grad_", "bool");
  CHECK_ERROR(tg::zeros({2}, tg::TensorOptions(tg::kInt64).requires_grad()), "requires_grad_", "int64");
  CHECK_ERROR(tg::gradcheck([](const std::vector<Tensor>& v) { return v[0]; }, {tg::zeros({2}).requires_grad_()}),
              "gradcheck", "float64", "float32");
}

TEST_CASE("errors: views") {
  Tensor x = f32({3, 2}).t();  // [2, 3], strides [1, 2]
  CHECK_ERROR(x.view({6}), "view", "[6]", "[2, 3]", "strides", "reshape");
  CHECK_ERROR(f32({2, 3}).view({4}), "view", "[4]", "[2, 3]", "6 elements");
  CHECK_ERROR(f32({2, 3}).view({-1, -1}), "view", "only one dimension");
  CHECK_ERROR(f32({2, 3}).view({-1, 4}), "view", "[-1, 4]", "[2, 3]");
  CHECK_ERROR(f32({2, 3}).reshape({7}), "reshape", "[7]", "[2, 3]");
  CHECK_ERROR(f32({2, 3}).reshape({-2, 3}), "reshape", "[-2, 3]");
  CHECK_ERROR(f32({0, 3}).reshape({-1, 0}), "reshape", "[-1, 0]");
  CHECK_ERROR(f32({2, 3}).expand({4, 3}), "expand", "[2, 3]", "[4, 3]");
  CHECK_ERROR(f32({2, 3}).expand({3}), "expand", "[2, 3]");
  CHECK_ERROR(f32({3}).expand({-1, 3}), "expand", "-1");
  CHECK_ERROR(f32({2, 3, 4}).t(), "t", "[2, 3, 4]");
  CHECK_ERROR(f32({}).select(0, 0), "select", "0-dim");
  CHECK_ERROR(f32({}).narrow(0, 0, 1), "narrow", "0-dim");
  CHECK_ERROR(tg::split(f32({5}), std::vector<int64_t>{2, 2}, 0), "split", "[2, 2]", "size 5");
  CHECK_ERROR(f32({5}).split(0), "split", "split_size");
  CHECK_ERROR(f32({5}).chunk(0), "chunk", "positive");
}

TEST_CASE("errors: joining and triangles") {
  CHECK_ERROR(tg::cat({f32({2, 3}), f32({2, 4})}, 0), "cat", "[2, 3]", "[2, 4]");
  CHECK_ERROR(tg::cat({f32({2, 3}), f32({3})}, 0), "cat", "dims");
  CHECK_ERROR(tg::cat({}, 0), "cat", "non-empty");
  CHECK_ERROR(tg::cat({f32({}), f32({})}, 0), "cat", "zero-dimensional");
  CHECK_ERROR(tg::stack({f32({2, 3}), f32({3, 2})}), "stack", "[3, 2]", "[2, 3]");
  CHECK_ERROR(tg::stack({}), "stack", "non-empty");
  CHECK_ERROR(tg::tril(f32({3})), "tril", "[3]");
  CHECK_ERROR(tg::triu(f32({})), "triu", "[]");
}

TEST_CASE("errors: undefined tensors") {
  Tensor u;
  CHECK_FALSE(u.defined());
  CHECK_ERROR(u.sizes(), "sizes", "undefined");
  CHECK_ERROR(u.numel(), "numel", "undefined");
  CHECK_ERROR(u.dtype(), "dtype", "undefined");
  CHECK_ERROR(u.data_ptr(), "data_ptr", "undefined");
  CHECK_ERROR(u.requires_grad_(), "requires_grad_", "undefined");
  CHECK_ERROR(u.backward(), "undefined");
  CHECK_ERROR(tg::add(u, f32({2})), "add", "undefined");
  CHECK_ERROR(tg::add(f32({2}), u), "add", "undefined");
  CHECK_ERROR(u * 2.0, "mul", "undefined");
  CHECK_ERROR(tg::exp(u), "exp", "undefined");
  CHECK_ERROR(tg::sum(u), "sum", "undefined");
  CHECK_ERROR(tg::matmul(u, f32({2, 2})), "matmul", "undefined");
  CHECK_ERROR(u.reshape({2}), "reshape", "undefined");
  CHECK_ERROR(u.transpose(0, 1), "transpose", "undefined");
  CHECK_ERROR(tg::cat({f32({2}), u}), "cat", "undefined");
  CHECK_ERROR(f32({2}).index_select(0, u), "index_select", "undefined");
  CHECK_ERROR(u.clone(), "clone", "undefined");
  CHECK_ERROR(u.to(tg::kFloat64), "to", "undefined");
  CHECK(u.str() == "tensor(undefined)");
}

TEST_CASE("errors: reductions over empty dims") {
  CHECK_ERROR(tg::max(f32({0})), "max", "empty", "[0]");
  CHECK_ERROR(tg::min(f32({2, 0})), "min", "empty", "[2, 0]");
  CHECK_ERROR(f32({3, 0}).max(1), "max", "empty", "[3, 0]", "dims [1]");
  CHECK_ERROR(f32({0, 3}).min(0), "min", "empty", "[0, 3]", "dims [0]");
  CHECK_ERROR(tg::amax(f32({3, 0}), {1}), "amax", "[3, 0]");
  CHECK_ERROR(tg::amin(f32({0}), {}), "amin", "[0]");
  CHECK_ERROR(f32({0}).argmax(), "argmax", "[0]");
  CHECK_ERROR(f32({2, 0}).argmin(1), "argmin", "[2, 0]");
  CHECK_ERROR(tg::one_hot(tg::zeros({0}, tg::kInt64)), "one_hot", "empty");
  // reductions that are defined on empty input do not throw
  CHECK(tg::sum(f32({0})).item<float>() == 0.0f);
  CHECK(tg::amax(f32({0, 3}), {1}).sizes() == Shape{0});
}

TEST_CASE("errors: dtypes") {
  CHECK_ERROR(tg::mean(tg::zeros({3}, tg::kInt64)), "mean", "int64");
  CHECK_ERROR(tg::var(tg::zeros({3}, tg::kInt64), {0}), "var", "int64");
  CHECK_ERROR(tg::logsumexp(tg::zeros({3}, tg::kInt64), {0}), "logsumexp", "int64");
  CHECK_ERROR(tg::neg(tg::ones({3}, tg::kBool)), "neg", "bool");
  CHECK_ERROR(tg::amax(tg::ones({3}, tg::kBool), {0}), "amax", "bool");
  CHECK_ERROR(tg::index_add(f32({3}), 0, i64({0}), f64({1})), "index_add", "float32", "float64");
  CHECK_ERROR(tg::gelu(f32({2}), "fast"), "gelu", "fast");
  CHECK_ERROR(tg::clamp(f32({2}), 1.0, 0.0), "clamp", "1", "0");
  CHECK_ERROR(tg::softplus(f32({2}), 0.0), "softplus", "beta");
}

TEST_CASE("errors: factories") {
  CHECK_ERROR(tg::arange(0, 5, 0), "arange", "step");
  CHECK_ERROR(tg::arange(0, 5, -1), "arange", "5", "0");
  CHECK_ERROR(tg::randint(5, 5, {3}), "randint", "low=5", "high=5");
  CHECK_ERROR(tg::randint(6, 2, {3}), "randint", "low=6", "high=2");
  CHECK_ERROR(tg::zeros({2, -1}), "zeros", "[2, -1]");
  CHECK_ERROR(tg::ones({-3}), "ones", "[-3]");
  CHECK_ERROR(tg::full({-1, 2}, 1.0), "full", "[-1, 2]");
  CHECK_ERROR(tg::empty({-2}), "empty", "[-2]");
  CHECK_ERROR(tg::randn({-1}), "randn", "[-1]");
  CHECK_ERROR(tg::rand({3, -2}), "rand", "[3, -2]");
  CHECK_ERROR(tg::randint(0, 3, {-1}), "randint", "[-1]");
  CHECK_ERROR(tg::rand({2}, tg::kInt64), "rand", "int64");
  CHECK_ERROR(tg::randn({2}, tg::kBool), "randn", "bool");
  CHECK_ERROR(tg::linspace(0, 1, -1), "linspace", "-1");
  CHECK_ERROR(tg::eye(-1), "eye", "-1");
  CHECK_ERROR(tg::randperm(-2), "randperm", "-2");
  CHECK_ERROR(tg::tensor(std::vector<double>{1, 2, 3}, {2, 2}), "tensor", "3 values", "[2, 2]");
  CHECK_ERROR(tg::from_blob(nullptr, {2}), "from_blob", "[2]");
  CHECK_ERROR(tg::set_num_threads(0), "set_num_threads", "0");
}

TEST_CASE("errors: in-place and autograd misuse") {
  Tensor w = tg::ones({2}, tg::kFloat64).requires_grad_();
  CHECK_ERROR(w.mul_(2.0), "mul_", "in-place", "[2]");
  Tensor y = w * 2.0;
  CHECK_ERROR(y.requires_grad_(false), "requires_grad_", "detach");
  CHECK_ERROR(tg::autograd::grad({(w * 2.0).sum()}, {tg::ones({2}, tg::kFloat64)}), "autograd::grad", "input 0");
  CHECK_ERROR(tg::autograd::backward({}), "backward", "no tensors");
  CHECK_ERROR(tg::autograd::backward({y.sum(), y.sum()}, {tg::Tensor()}), "backward", "2 outputs", "1 gradients");
  CHECK_ERROR(tg::gradcheck([](const std::vector<Tensor>& v) { return v[0]; }, {tg::ones({2}, tg::kFloat64)}),
              "gradcheck", "no input");
}

}  // TEST_SUITE
