// A tour of docs/tensors.md: storage and strides, views, contiguity, broadcasting, dtypes, printing, file I/O.
// Every claim the tour makes is checked; the program exits 1 if any does not hold.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include <unistd.h>

#include "tapegrad.h"

using tg::Shape;
using tg::Tensor;

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
  std::cout << (ok ? "  ok   " : "  FAIL ") << what << "\n";
  failures += !ok;
}
}  // namespace

int main() {
  // ---- storage, sizes, strides, offset
  Tensor x = tg::arange(6).reshape({2, 3});  // int64 [[0, 1, 2], [3, 4, 5]]
  std::cout << "x = " << x << "\n";
  check(x.str() == "tensor([[0, 1, 2],\n        [3, 4, 5]], shape=[2, 3], dtype=int64)", "printing a 2-d int64 tensor");
  check(x.strides() == Shape{3, 1} && x.storage_offset() == 0 && x.is_contiguous(), "row-major strides {3, 1}");

  // ---- views share storage and only change (sizes, strides, offset)
  Tensor xt = x.t();  // transpose: swap sizes and strides
  check(xt.sizes() == Shape{3, 2} && xt.strides() == Shape{1, 3} && !xt.is_contiguous(), "t(): strides {1, 3}");
  check(xt.storage() == x.storage(), "t() shares x's storage");

  Tensor row = x.select(0, 1);  // drop dim 0 at index 1: offset += 1 * stride(0)
  check(row.sizes() == Shape{3} && row.storage_offset() == 3, "select(0, 1): offset 3");

  Tensor cols = x.slice(1, 0, 3, 2);  // columns 0 and 2: stride(1) *= 2
  check(cols.sizes() == Shape{2, 2} && cols.strides() == Shape{3, 2}, "slice(1, 0, 3, 2): strides {3, 2}");
  check(cols.to_vector<int64_t>() == std::vector<int64_t>{0, 2, 3, 5}, "slice values");

  Tensor u = x.unsqueeze(0);  // a size-1 dim: still contiguous
  check(u.sizes() == Shape{1, 2, 3} && u.is_contiguous(), "unsqueeze(0) stays contiguous");

  Tensor p = tg::arange(24).reshape({2, 3, 4}).permute({2, 0, 1});
  check(p.sizes() == Shape{4, 2, 3} && p.strides() == Shape{1, 12, 4}, "permute({2, 0, 1}) permutes strides");

  // A write through a view is seen by the base (and bumps the shared version counter).
  Tensor y = tg::zeros({2, 3});
  uint64_t v0 = y.version();
  y.select(1, 2).fill_(7.0);
  check(y.to_vector<float>() == std::vector<float>{0, 0, 7, 0, 0, 7}, "fill_ through a column view");
  check(y.version() == v0 + 1, "in-place write bumps the version");

  // ---- contiguity: contiguous() returns self when it can, else copies
  check(x.contiguous().is_same(x), "contiguous() on a contiguous tensor is the same handle");
  Tensor xtc = xt.contiguous();
  check(xtc.is_contiguous() && xtc.storage() != x.storage() && xtc.strides() == Shape{2, 1},
        "contiguous() of a transpose copies into fresh row-major storage");
  bool view_threw = false;
  try {
    (void)xt.view({6});
  } catch (const tg::Error& e) {
    view_threw = true;
    std::cout << "  xt.view({6}) -> tg::Error: " << e.what() << "\n";
  }
  check(view_threw, "view() refuses a shape the strides cannot express");
  check(xt.reshape({6}).to_vector<int64_t>() == std::vector<int64_t>{0, 3, 1, 4, 2, 5}, "reshape() copies instead");

  // ---- broadcasting: sizes align from the right; size-1 and missing dims get stride 0
  Tensor col = tg::tensor(std::vector<float>{10, 20, 30}, {3, 1});
  Tensor vec = tg::tensor(std::vector<float>{1, 2, 3, 4});
  Tensor sum = col + vec;  // [3, 1] + [4] -> [3, 4]
  std::cout << "col + vec = " << sum << "\n";
  check(sum.sizes() == Shape{3, 4} && sum.to_vector<float>()[5] == 22, "[3, 1] + [4] -> [3, 4]");
  Tensor e = vec.expand({3, 4});  // the same broadcast, as a view
  check(e.strides() == Shape{0, 1} && e.storage() == vec.storage(), "expand: stride 0 on the new dim");
  check(col.expand({3, 4}).strides() == Shape{1, 0}, "expand: stride 0 on the size-1 dim");
  check(tg::broadcast_shapes({3, 1}, {4}, "demo") == Shape{3, 4}, "tg::broadcast_shapes");
  bool bad = false;
  try {
    (void)(tg::zeros({2, 3}) + tg::zeros({4}));
  } catch (const tg::Error& err) {
    bad = true;
    std::cout << "  [2, 3] + [4] -> tg::Error: " << err.what() << "\n";
  }
  check(bad, "incompatible shapes are an error at the op boundary");

  // ---- dtypes and promotion
  Tensor i = tg::tensor(std::vector<int64_t>{1, 2, 3});
  Tensor f = tg::ones({3});            // float32 by default
  Tensor d = tg::ones({3}, tg::kFloat64);
  check((i + f).dtype() == tg::kFloat32, "int64 + float32 -> float32");
  check((f + d).dtype() == tg::kFloat64, "float32 + float64 -> float64");
  check((i * 2).dtype() == tg::kInt64, "int64 * 2 stays int64");
  check((i * 2.5).dtype() == tg::kFloat32, "int64 * 2.5 -> float32");
  check((f * 2.5).dtype() == tg::kFloat32, "a scalar does not widen float32");
  check((i / i).dtype() == tg::kFloat32, "int64 / int64 -> float32 (true division)");
  check(tg::exp(i).dtype() == tg::kFloat32, "exp(int64) -> float32");
  check((i > 1).dtype() == tg::kBool, "comparisons -> bool");
  check(tg::sum(i).dtype() == tg::kInt64, "sum(int64) -> int64");
  check(i.to(tg::kFloat64).dtype() == tg::kFloat64, "to(dtype) converts");

  // ---- factories and the seeded generator
  tg::manual_seed(42);
  Tensor r1 = tg::randn({5});
  tg::manual_seed(42);
  Tensor r2 = tg::randn({5});
  check(tg::equal(r1, r2), "same seed, same numbers");
  check(tg::eye(3).sum().item<float>() == 3, "eye");
  check(tg::linspace(0, 1, 5).to_vector<float>()[2] == 0.5f, "linspace");
  check(tg::full({2, 2}, 1.5, tg::kFloat64).dtype() == tg::kFloat64, "full with a dtype");

  // ---- printing summarises long dims like PyTorch
  std::cout << "arange(20) = " << tg::arange(20) << "\n";
  check(tg::arange(20).str().find("...") != std::string::npos, "long dims are summarised with ...");

  // ---- files: .npy (one tensor) and .safetensors (named tensors plus metadata)
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("tapegrad_tour_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  tg::io::save_npy((dir / "x.npy").string(), xt);  // non-contiguous: written in row-major order
  Tensor back = tg::io::load_npy((dir / "x.npy").string());
  check(tg::equal(back, xt), ".npy round trip");
  tg::io::save_safetensors((dir / "m.safetensors").string(), {{"w", d}, {"idx", i}}, {{"note", "tour"}});
  std::map<std::string, std::string> meta;
  auto loaded = tg::io::load_safetensors((dir / "m.safetensors").string(), &meta);
  check(loaded.size() == 2 && tg::equal(loaded.at("idx"), i) && meta.at("note") == "tour", ".safetensors round trip");
  fs::remove_all(dir);

  std::cout << (failures ? "FAILED\n" : "all checks passed\n");
  return failures == 0 ? 0 : 1;
}
