// The CUDA backend against the CPU backend: every op family and fused kernel, forward and gradients, on the same
// inputs moved to the device. Where no GPU is usable (CI, CPU-only builds) each case says why and returns; the
// error-path cases below it run everywhere.
#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "backends/cuda.h"
#include "tapegrad.h"

using namespace tg;

namespace {

bool skip_without_gpu() {
  if (cuda::is_available()) return false;
  MESSAGE("CUDA test skipped: " << cuda::unavailable_reason());
  return true;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  if (a.numel() == 0) return 0;
  return amax(abs(sub(a.to(kFloat64), b.to(kFloat64))), {}, false).item<double>();
}

// Runs f on the CPU and on CUDA copies of the inputs; compares the outputs and, for floating inputs, the gradients
// of sum(out * w) with a fixed random w.
void compare(const char* name, const std::vector<Tensor>& inputs, const std::function<Tensor(const std::vector<Tensor>&)>& f,
             double tol = 1e-10) {
  CAPTURE(name);
  auto run = [&](Device d, const Tensor& weight) {
    std::vector<Tensor> xs;
    for (const Tensor& x : inputs) {
      Tensor y = x.to(d).detach();
      if (is_floating(y.dtype())) y.requires_grad_(true);
      xs.push_back(y);
    }
    Tensor out = f(xs);
    std::vector<Tensor> grads;
    if (out.requires_grad()) {
      mul(out, weight.to(d).to(out.dtype())).sum().backward();
      for (const Tensor& x : xs) grads.push_back(x.grad().defined() ? x.grad().to(Device::cpu()) : Tensor());
    }
    return std::make_pair(out.to(Device::cpu()), grads);
  };
  Tensor probe = f(inputs);
  manual_seed(7);
  Tensor weight = randn(probe.sizes(), TensorOptions(kFloat64));
  auto [cpu_out, cpu_grads] = run(Device::cpu(), weight);
  auto [gpu_out, gpu_grads] = run(Device::cuda(), weight);
  CHECK(gpu_out.dtype() == cpu_out.dtype());
  CHECK(max_abs_diff(cpu_out, gpu_out) <= tol);
  REQUIRE(cpu_grads.size() == gpu_grads.size());
  for (size_t i = 0; i < cpu_grads.size(); ++i) {
    CAPTURE(i);
    REQUIRE(cpu_grads[i].defined() == gpu_grads[i].defined());
    if (cpu_grads[i].defined()) CHECK(max_abs_diff(cpu_grads[i], gpu_grads[i]) <= tol);
  }
}

Tensor rnd(const Shape& s, uint64_t seed = 1) {
  manual_seed(seed);
  return randn(s, TensorOptions(kFloat64));
}

}  // namespace

TEST_CASE("cuda: transfers round-trip every dtype, views and broadcasts") {
  if (skip_without_gpu()) return;
  Tensor x = rnd({3, 4, 5});
  CHECK(max_abs_diff(x.to(Device::cuda()).to(Device::cpu()), x) == 0);
  Tensor v = x.transpose(0, 2).narrow(1, 1, 2);  // non-contiguous, offset
  CHECK(max_abs_diff(v.to(Device::cuda()).to(Device::cpu()), v) == 0);
  Tensor g = x.to(Device::cuda()).transpose(0, 2).narrow(1, 1, 2);
  CHECK(max_abs_diff(g.to(Device::cpu()), v) == 0);
  CHECK(max_abs_diff(g.contiguous().to(Device::cpu()), v) == 0);
  for (DType t : {kBool, kInt64, kFloat32, kFloat64}) {
    Tensor y = gt(x, 0.0).to(t);
    CHECK(max_abs_diff(y.to(Device::cuda()).to(Device::cpu()), y) == 0);
    CHECK(max_abs_diff(x.to(Device::cuda()).to(t).to(Device::cpu()), x.to(t)) == 0);
  }
  CHECK(x.to(Device::cuda()).device() == Device::cuda());
}

TEST_CASE("cuda: unary ops match the cpu, values and gradients") {
  if (skip_without_gpu()) return;
  Tensor x = rnd({4, 7});
  Tensor pos = add(abs(x), 0.1);
  compare("neg", {x}, [](auto& v) { return neg(v[0]); });
  compare("abs", {x}, [](auto& v) { return abs(v[0]); });
  compare("exp", {x}, [](auto& v) { return exp(v[0]); });
  compare("log", {pos}, [](auto& v) { return log(v[0]); });
  compare("sqrt", {pos}, [](auto& v) { return sqrt(v[0]); });
  compare("rsqrt", {pos}, [](auto& v) { return rsqrt(v[0]); });
  compare("sin", {x}, [](auto& v) { return sin(v[0]); });
  compare("cos", {x}, [](auto& v) { return cos(v[0]); });
  compare("tanh", {x}, [](auto& v) { return tanh(v[0]); });
  compare("sigmoid", {x}, [](auto& v) { return sigmoid(v[0]); });
  compare("relu", {x}, [](auto& v) { return relu(v[0]); });
  compare("gelu", {x}, [](auto& v) { return gelu(v[0]); });
  compare("silu", {x}, [](auto& v) { return silu(v[0]); });
  compare("softplus", {x}, [](auto& v) { return softplus(v[0]); });
  compare("pow", {pos}, [](auto& v) { return pow(v[0], 1.7); });
  compare("clamp", {x}, [](auto& v) { return clamp(v[0], -0.5, 0.5); });
  compare("sign (non-contiguous)", {x.t()}, [](auto& v) { return mul(sign(v[0]), v[0]); });
  compare("float32", {x.to(kFloat32)}, [](auto& v) { return tanh(exp(v[0])); }, 1e-5);
}

TEST_CASE("cuda: binary ops with broadcasting, comparisons and where match the cpu") {
  if (skip_without_gpu()) return;
  Tensor a = rnd({3, 1, 5}, 1), b = rnd({4, 1}, 2);
  compare("add", {a, b}, [](auto& v) { return add(v[0], v[1]); });
  compare("sub", {a, b}, [](auto& v) { return sub(v[0], v[1]); });
  compare("mul", {a, b}, [](auto& v) { return mul(v[0], v[1]); });
  compare("div", {a, add(abs(b), 0.5)}, [](auto& v) { return div(v[0], v[1]); });
  compare("maximum", {a, b}, [](auto& v) { return maximum(v[0], v[1]); });
  compare("scalar", {a}, [](auto& v) { return add(mul(v[0], 3.0), 1.0); });
  compare("where", {a, b}, [](auto& v) { return where(gt(v[0], v[1]), v[0], v[1]); });
  compare("compare", {a, b}, [](auto& v) { return le(v[0], v[1]); });
  Tensor i = randint(-5, 5, {6}, TensorOptions(kInt64));
  compare("int64", {i, neg(i)}, [](auto& v) { return mul(add(v[0], v[1]), v[0]); });
}

TEST_CASE("cuda: reductions, cumsum and softmax match the cpu") {
  if (skip_without_gpu()) return;
  Tensor x = rnd({5, 6, 7});
  compare("sum all", {x}, [](auto& v) { return v[0].sum(); });
  compare("sum dims", {x}, [](auto& v) { return sum(v[0], {0, 2}, true); });
  compare("mean", {x}, [](auto& v) { return mean(v[0], {1}, false); });
  compare("amax", {x}, [](auto& v) { return amax(v[0], {2}, false); });
  compare("amin (strided)", {x.transpose(0, 2)}, [](auto& v) { return amin(v[0], {1}, true); });
  compare("argmax", {x}, [](auto& v) { return argmax(v[0], 1, false); });
  compare("cumsum", {x}, [](auto& v) { return cumsum(v[0], 1); });
  compare("softmax", {x}, [](auto& v) { return softmax(v[0], -1); });
  compare("log_softmax dim 0", {x}, [](auto& v) { return log_softmax(v[0], 0); });
  compare("logsumexp", {x}, [](auto& v) { return logsumexp(v[0], {2}, false); });
  compare("var", {x}, [](auto& v) { return var(v[0], {1}, 1, false); });
  compare("sum of 100k", {rnd({100000})}, [](auto& v) { return v[0].sum(); }, 1e-9);
}

TEST_CASE("cuda: matmul in every layout, float32 and float64, matches the cpu") {
  if (skip_without_gpu()) return;
  Tensor a = rnd({3, 4, 5}, 1), b = rnd({3, 5, 6}, 2);
  compare("bmm", {a, b}, [](auto& v) { return matmul(v[0], v[1]); }, 1e-12);
  compare("transposed operands", {a.transpose(1, 2).contiguous(), b.transpose(1, 2).contiguous()},
          [](auto& v) { return matmul(v[0].transpose(1, 2), v[1].transpose(1, 2)); }, 1e-12);
  compare("broadcast batch", {a, rnd({5, 2}, 3)}, [](auto& v) { return matmul(v[0], v[1]); }, 1e-12);
  compare("matrix-vector", {rnd({4, 5}), rnd({5})}, [](auto& v) { return matmul(v[0], v[1]); }, 1e-12);
  compare("float32", {a.to(kFloat32), b.to(kFloat32)}, [](auto& v) { return matmul(v[0], v[1]); }, 1e-4);
  compare("int64", {randint(-3, 3, {2, 3}, TensorOptions(kInt64)), randint(-3, 3, {3, 4}, TensorOptions(kInt64))},
          [](auto& v) { return matmul(v[0], v[1]); });
}

TEST_CASE("cuda: index ops match the cpu") {
  if (skip_without_gpu()) return;
  Tensor x = rnd({5, 4});
  Tensor idx = tensor(std::vector<int64_t>{4, 0, 0, 2, -1});
  compare("index_select", {x}, [&](auto& v) { return index_select(v[0], 0, idx.to(v[0].device())); });
  Tensor g = randint(0, 4, {5, 3}, TensorOptions(kInt64));
  compare("gather", {x}, [&](auto& v) { return gather(v[0], 1, g.to(v[0].device())); });
  compare("embedding", {x}, [&](auto& v) { return embedding(v[0], tensor(std::vector<int64_t>{1, 1, 3}).to(v[0].device())); });
  compare("tril", {x}, [](auto& v) { return tril(v[0], 0); });
  compare("cat", {x, rnd({2, 4})}, [](auto& v) { return cat({v[0], v[1]}, 0); });
}

TEST_CASE("cuda: fused linear, cross-entropy and norms match the cpu") {
  if (skip_without_gpu()) return;
  Tensor x = rnd({6, 5}, 1), w = rnd({3, 5}, 2), bias = rnd({3}, 3);
  compare("linear", {x, w, bias}, [](auto& v) { return nn::functional::linear(v[0], v[1], v[2]); }, 1e-12);
  Tensor logits = rnd({8, 10});
  Tensor target = tensor(std::vector<int64_t>{0, 9, 3, 3, -100, 5, 1, 2});
  compare("cross_entropy", {logits},
          [&](auto& v) { return nn::functional::cross_entropy(v[0], target.to(v[0].device())); }, 1e-12);
  Tensor h = rnd({4, 16}), gw = rnd({16}, 5), gb = rnd({16}, 6);
  compare("layer_norm", {h, gw, gb}, [](auto& v) { return nn::functional::layer_norm(v[0], {16}, v[1], v[2]); }, 1e-12);
  compare("rms_norm", {h, gw}, [](auto& v) { return nn::functional::rms_norm(v[0], {16}, v[1]); }, 1e-12);
}

TEST_CASE("cuda: a few Adam steps on the device follow the cpu's") {
  if (skip_without_gpu()) return;
  Tensor w0 = rnd({7, 3}), target = rnd({5, 3}, 2), x = rnd({5, 7}, 3);
  auto train = [&](Device d) {
    Tensor w = w0.to(d).detach().requires_grad_(true);
    optim::Adam opt({w}, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
    for (int step = 0; step < 5; ++step) {
      opt.zero_grad();
      Tensor loss = square(sub(matmul(x.to(d), w), target.to(d))).mean();
      loss.backward();
      opt.step();
    }
    return w.detach().to(Device::cpu());
  };
  CHECK(max_abs_diff(train(Device::cpu()), train(Device::cuda())) < 1e-12);
}

TEST_CASE("cuda: the caching allocator reuses freed blocks") {
  if (skip_without_gpu()) return;
  { Tensor warm = zeros({1000}, TensorOptions(kFloat32).device(Device::cuda())); }
  const cuda::MemoryStats before = cuda::memory_stats();
  for (int i = 0; i < 10; ++i) Tensor t = zeros({1000}, TensorOptions(kFloat32).device(Device::cuda()));
  const cuda::MemoryStats after = cuda::memory_stats();
  CHECK(after.device_allocs == before.device_allocs);
  CHECK(after.cache_hits >= before.cache_hits + 10);
  cuda::empty_cache();
  CHECK(cuda::memory_stats().reserved_bytes == cuda::memory_stats().allocated_bytes);
}

TEST_CASE("cuda: mixing devices is a clear error") {
  if (skip_without_gpu()) return;
  Tensor a = ones({2}), b = ones({2}).to(Device::cuda());
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("tensors on cpu and cuda:0"), Error);
  CHECK_THROWS_AS((void)ones({2}).to(Device::cuda(1)), Error);
  CHECK_THROWS_WITH_AS((void)b.data_ptr(), doctest::Contains("cuda:0"), Error);
}

// These run everywhere: without a usable GPU, asking for one is a tg::Error that says why, never a crash.
TEST_CASE("cuda: without a usable GPU, device tensors are a clear error") {
  if (cuda::is_available()) return;
  CHECK_FALSE(cuda::unavailable_reason().empty());
  CHECK(cuda::device_count() == 0);
  CHECK_THROWS_AS((void)ones({2}).to(Device::cuda()), Error);
  CHECK_THROWS_AS((void)zeros({2}, TensorOptions().device(Device::cuda())), Error);
  cuda::synchronize();  // no-ops
  cuda::empty_cache();
  CHECK(cuda::memory_stats().allocated_bytes == 0);
}
