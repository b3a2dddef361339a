// Tensor files: .npy and safetensors round trips, files written by NumPy, and one test per kind of bad file.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "tapegrad.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using doctest::Contains;
using tg::DType;
using tg::Shape;
using tg::Tensor;
using tg::io::load_npy;
using tg::io::load_safetensors;
using tg::io::save_npy;
using tg::io::save_safetensors;

namespace {

using tg::testing::TempDir;

#ifdef TG_FIXTURE_DIR
const std::string kFixtures = TG_FIXTURE_DIR;
#else
const std::string kFixtures = "tests/fixtures";
#endif

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

template <class T> std::string bytes_of(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::string le_bytes(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A raw .npy file: magic, version, header length, the dict text as given (no padding), then data.
std::string npy_raw(const std::string& dict, const std::string& data, int major = 1) {
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  out += le_bytes(dict.size(), major == 1 ? 2 : 4);
  return out + dict + data;
}

// A raw safetensors file: u64 header length, the header text as given, then data.
std::string st_raw(const std::string& header, const std::string& data) { return le_bytes(header.size(), 8) + header + data; }

// A tensor of distinct values, written through data_ptr() so that only tg::empty is needed.
Tensor sample(DType dt, const Shape& shape) {
  Tensor t = tg::empty(shape, dt);
  tg::dispatch(dt, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if constexpr (std::is_same_v<T, bool>)
        p[i] = i % 3 == 0;
      else if constexpr (std::is_floating_point_v<T>)
        p[i] = static_cast<T>(i * 1.25 - 3.5);
      else
        p[i] = static_cast<T>(i * 7 - 20) * (int64_t{1} << 33);  // needs all 64 bits
    }
  });
  return t;
}

void check_same(const Tensor& got, const Tensor& want) {
  REQUIRE(got.defined());
  CHECK(got.sizes() == want.sizes());
  REQUIRE(got.dtype() == want.dtype());
  tg::dispatch(want.dtype(), [&]<class T>() { CHECK(got.to_vector<T>() == want.to_vector<T>()); });
}

const std::vector<DType> kDTypes = {tg::kFloat32, tg::kFloat64, tg::kInt64, tg::kBool};
const std::vector<Shape> kShapes = {{2, 3}, {}, {0, 3}, {5}, {2, 1, 3}};

const std::string kF8x6 = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";

}  // namespace

TEST_SUITE("io") {

TEST_CASE("npy round trip: every dtype, 0-d and size-0") {
  TempDir tmp;
  for (DType dt : kDTypes)
    for (const Shape& s : kShapes) {
      CAPTURE(tg::dtype_name(dt));
      CAPTURE(tg::shape_str(s));
      Tensor t = sample(dt, s);
      save_npy(tmp.file("t.npy"), t);
      check_same(load_npy(tmp.file("t.npy")), t);
      CHECK(read_file(tmp.file("t.npy")).size() % 64 == (t.numel() * tg::element_size(dt)) % 64);  // header padded to 64
      CHECK_FALSE(fs::exists(tmp.file("t.npy.tmp")));
    }
}

TEST_CASE("safetensors round trip: every dtype and shape in one file, with metadata") {
  TempDir tmp;
  std::map<std::string, Tensor> ts;
  for (DType dt : kDTypes)
    for (size_t i = 0; i < kShapes.size(); ++i) ts[fmt::format("{}.{}", tg::dtype_name(dt), i)] = sample(dt, kShapes[i]);
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "1200"}, {"note", "ünïcode \"quoted\""}};
  save_safetensors(tmp.file("m.safetensors"), ts, meta);
  CHECK_FALSE(fs::exists(tmp.file("m.safetensors.tmp")));

  std::string raw = read_file(tmp.file("m.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);  // padded as the official writer does

  std::map<std::string, std::string> got_meta;
  auto got = load_safetensors(tmp.file("m.safetensors"), &got_meta);
  CHECK(got_meta == meta);
  REQUIRE(got.size() == ts.size());
  for (const auto& [name, t] : ts) {
    CAPTURE(name);
    REQUIRE(got.count(name) == 1);
    check_same(got.at(name), t);
  }

  // No metadata at all, and an empty file of tensors.
  save_safetensors(tmp.file("e.safetensors"), {});
  got_meta = {{"stale", "x"}};
  CHECK(load_safetensors(tmp.file("e.safetensors"), &got_meta).empty());
  CHECK(got_meta.empty());
}

TEST_CASE("non-contiguous tensors are written with their logical values") {
  TempDir tmp;
  Tensor base = sample(tg::kFloat64, {3, 4});
  for (Tensor v : {base.transpose(0, 1), base.slice(1, 1, 4, 2), base.select(1, 2)}) {
    CAPTURE(tg::shape_str(v.sizes()));
    save_npy(tmp.file("v.npy"), v);
    Tensor a = load_npy(tmp.file("v.npy"));
    CHECK(a.sizes() == v.sizes());
    CHECK(a.to_vector<double>() == v.to_vector<double>());
    save_safetensors(tmp.file("v.safetensors"), {{"v", v}, {"base", base}});
    auto m = load_safetensors(tmp.file("v.safetensors"));
    CHECK(m.at("v").sizes() == v.sizes());
    CHECK(m.at("v").to_vector<double>() == v.to_vector<double>());
    CHECK(m.at("base").to_vector<double>() == base.to_vector<double>());
  }
}

TEST_CASE("npy files written by numpy") {
  Tensor s = load_npy(kFixtures + "/np_sample.npy");
  CHECK(s.dtype() == tg::kFloat32);
  CHECK(s.sizes() == Shape{2, 3});
  CHECK(s.to_vector<float>() == std::vector<float>{0.0f, 1.5f, -2.0f, 3.25f, 4.0f, -5.5f});

  Tensor i = load_npy(kFixtures + "/np_int64.npy");
  CHECK(i.dtype() == tg::kInt64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{7, -3, 0, int64_t{1} << 40});

  Tensor i32 = load_npy(kFixtures + "/np_int32.npy");  // widened to int64
  CHECK(i32.dtype() == tg::kInt64);
  CHECK(i32.sizes() == Shape{2, 2});
  CHECK(i32.to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3, 2147483647});

  Tensor b = load_npy(kFixtures + "/np_bool.npy");
  CHECK(b.dtype() == tg::kBool);
  CHECK(b.to_vector<bool>() == std::vector<bool>{true, false, true});

  Tensor sc = load_npy(kFixtures + "/np_scalar.npy");
  CHECK(sc.dim() == 0);
  CHECK(sc.item<double>() == 2.5);

  Tensor f = load_npy(kFixtures + "/np_fortran.npy");  // np.asfortranarray(arange(24).reshape(2, 3, 4))
  CHECK(f.sizes() == Shape{2, 3, 4});
  std::vector<double> want(24);
  for (int k = 0; k < 24; ++k) want[k] = k;
  CHECK(f.to_vector<double>() == want);

  Tensor v2 = load_npy(kFixtures + "/np_v2.npy");  // format version 2.0
  CHECK(v2.dtype() == tg::kFloat64);
  CHECK(v2.to_vector<double>() == std::vector<double>{0.0, 1.5, -2.0, 3.25, 4.0, -5.5});
}

TEST_CASE("npy: versions 2.0 and 3.0, Fortran order, odd spacing") {
  TempDir tmp;
  const std::string data = bytes_of<double>({1, 2, 3, 4, 5, 6});
  for (int major : {1, 2, 3}) {
    write_file(tmp.file("v.npy"), npy_raw(kF8x6 + "   \n", data, major));
    CHECK(load_npy(tmp.file("v.npy")).to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 6});
  }
  // Column-major data of [[1, 2, 3], [4, 5, 6]].
  write_file(tmp.file("f.npy"), npy_raw("{\"descr\":\"<f8\",\"fortran_order\":True,\"shape\":(2,3)}", bytes_of<double>({1, 4, 2, 5, 3, 6})));
  Tensor f = load_npy(tmp.file("f.npy"));
  CHECK(f.sizes() == Shape{2, 3});
  CHECK(f.to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 6});
  // Bool bytes other than 0/1 are normalised; Python 2 longs in the shape are accepted.
  write_file(tmp.file("b.npy"), npy_raw("{'descr': '|b1', 'fortran_order': False, 'shape': (3L,), }", std::string("\x00\x02\x01", 3)));
  CHECK(load_npy(tmp.file("b.npy")).to_vector<bool>() == std::vector<bool>{false, true, true});
}

TEST_CASE("npy: every malformed file is a tg::Error naming the file and the cause") {
  TempDir tmp;
  const std::string p = tmp.file("bad.npy");
  auto expect_error = [&](const std::string& bytes, const char* cause) {
    CAPTURE(cause);
    write_file(p, bytes);
    CHECK_THROWS_AS(load_npy(p), tg::Error);
    CHECK_THROWS_WITH_AS(load_npy(p), Contains(cause), tg::Error);
    CHECK_THROWS_WITH_AS(load_npy(p), Contains(p.c_str()), tg::Error);
  };
  const std::string data = bytes_of<double>({1, 2, 3, 4, 5, 6});
  const std::string good = npy_raw(kF8x6, data);
  expect_error("", "bad magic");
  expect_error("\x93NUM", "bad magic");
  expect_error("PK\x03\x04 not numpy at all", "bad magic");
  expect_error(npy_raw(kF8x6, data, 4), "unsupported format version");
  expect_error(good.substr(0, 9), "truncated header length");
  expect_error(good.substr(0, 30), "truncated header");
  expect_error(good.substr(0, good.size() - 1), "truncated data");
  expect_error(npy_raw("{'descr': '<U4', 'fortran_order': False, 'shape': (2,), }", ""), "unsupported dtype '<U4'");
  expect_error(npy_raw("{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", ""), "unsupported dtype");
  expect_error(npy_raw("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", std::string(8, '\0')), "big-endian");
  expect_error(npy_raw("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", ""), "structured");
  expect_error(npy_raw("{'descr': '<f8', 'shape': (2, 3), }", data), "missing key 'fortran_order'");
  expect_error(npy_raw("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2, 3), }", data), "True or False");
  expect_error(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, -3), }", data), "negative dimension");
  expect_error(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", data), "unexpected key 'x'");
  expect_error(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3) ", data), "malformed header");
  expect_error(npy_raw("{'descr' '<f8', 'fortran_order': False, 'shape': (2, 3), }", data), "expected ':'");
  expect_error(npy_raw("{'descr': '<f8", data), "unterminated string");
  expect_error(npy_raw("not a dict", data), "malformed header");
  expect_error(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", data), "too large");
  expect_error(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }", data), "truncated data");
  CHECK_THROWS_WITH_AS(load_npy(tmp.file("missing.npy")), Contains("cannot open"), tg::Error);
  CHECK_THROWS_WITH_AS(load_npy(tmp.dir.string()), Contains("is a directory"), tg::Error);
}

TEST_CASE("safetensors: F16, BF16 and I32 are widened on load") {
  TempDir tmp;
  const std::string hdr =
      R"({"h":{"dtype":"F16","shape":[6],"data_offsets":[0,12]},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]},)"
      R"("i":{"dtype":"I32","shape":[1,2],"data_offsets":[16,24]}})";
  const std::string data = bytes_of<uint16_t>({0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00}) +
                           bytes_of<uint16_t>({0x3F80, 0xC040}) + bytes_of<int32_t>({-7, 2147483647});
  write_file(tmp.file("w.safetensors"), st_raw(hdr, data));
  auto m = load_safetensors(tmp.file("w.safetensors"));
  CHECK(m.at("h").dtype() == tg::kFloat32);
  CHECK(m.at("h").to_vector<float>() ==
        std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f, 5.9604644775390625e-8f, std::numeric_limits<float>::infinity()});
  CHECK(m.at("b").to_vector<float>() == std::vector<float>{1.0f, -3.0f});
  CHECK(m.at("i").dtype() == tg::kInt64);
  CHECK(m.at("i").sizes() == Shape{1, 2});
  CHECK(m.at("i").to_vector<int64_t>() == std::vector<int64_t>{-7, 2147483647});
}

TEST_CASE("safetensors: every malformed file is a tg::Error naming the file, the tensor and the cause") {
  TempDir tmp;
  const std::string p = tmp.file("bad.safetensors");
  auto expect_error = [&](const std::string& bytes, const char* cause, const char* tensor = nullptr) {
    CAPTURE(cause);
    write_file(p, bytes);
    CHECK_THROWS_AS(load_safetensors(p), tg::Error);
    CHECK_THROWS_WITH_AS(load_safetensors(p), Contains(cause), tg::Error);
    CHECK_THROWS_WITH_AS(load_safetensors(p), Contains(p.c_str()), tg::Error);
    if (tensor) CHECK_THROWS_WITH_AS(load_safetensors(p), Contains(tensor), tg::Error);
  };
  const std::string data = bytes_of<float>({1, 2, 3, 4, 5, 6});
  auto one = [&](const std::string& entry) { return st_raw(R"({"x":)" + entry + "}", data); };
  const std::string good = one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})");
  write_file(p, good);
  CHECK(load_safetensors(p).at("x").to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});

  expect_error("", "too short");
  expect_error("\x10\x00\x00", "too short");
  expect_error(le_bytes(1000, 8) + "{}", "larger than the rest of the file");
  expect_error(good.substr(0, 20), "larger than the rest of the file");
  expect_error(good.substr(0, good.size() - 4), "out of range", "'x'");  // truncated data
  expect_error(st_raw(R"({"x": {"dtype": "F32", )", data), "invalid JSON");
  expect_error(st_raw("[1, 2]", data), "expected a JSON object");
  expect_error(one(R"({"dtype":"Q8","shape":[2,3],"data_offsets":[0,24]})"), "unsupported dtype \"Q8\"", "'x'");
  expect_error(one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[24,0]})"), "begin is after end", "'x'");
  expect_error(one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,28]})"), "out of range", "'x'");
  expect_error(one(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,24]})"), "span 24 bytes", "'x'");
  expect_error(one(R"({"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]})"), "negative shape", "'x'");
  expect_error(one(R"({"dtype":"F32","shape":[2.5,3],"data_offsets":[0,24]})"), "must be integers", "'x'");
  expect_error(one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0]})"), "data_offsets must be", "'x'");
  expect_error(one(R"({"dtype":"F32","shape":[2,3]})"), "missing \"data_offsets\"", "'x'");
  expect_error(one(R"("F32")"), "expected an object", "'x'");
  expect_error(one(R"({"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,24]})"), "too large", "'x'");
  expect_error(st_raw(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                      R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data), "overlap", "'b'");
  expect_error(st_raw(R"({"__metadata__":{"k":3}})", ""), "must be a string");
  CHECK_THROWS_WITH_AS(load_safetensors(tmp.file("missing.safetensors")), Contains("cannot open"), tg::Error);
}

TEST_CASE("writes are atomic: a failed save leaves the old file readable") {
  TempDir tmp;
  Tensor a = sample(tg::kFloat32, {2, 3}), b = sample(tg::kInt64, {4});
  for (const bool npy : {true, false}) {
    const std::string p = tmp.file(npy ? "x.npy" : "x.safetensors");
    CAPTURE(p);
    auto save = [&](const Tensor& t) { npy ? save_npy(p, t) : save_safetensors(p, {{"t", t}}); };
    auto load = [&]() { return npy ? load_npy(p) : load_safetensors(p).at("t"); };
    save(a);
    fs::create_directory(p + ".tmp");  // the temp file cannot be opened, so the write fails
    CHECK_THROWS_WITH_AS(save(b), Contains(".tmp"), tg::Error);
    check_same(load(), a);
    fs::remove(p + ".tmp");
    save(b);  // and an ordinary save replaces the file
    check_same(load(), b);
    CHECK_FALSE(fs::exists(p + ".tmp"));
  }
  CHECK_THROWS_WITH_AS(save_safetensors(tmp.file("r.safetensors"), {{"__metadata__", a}}), Contains("reserved"), tg::Error);
  CHECK_THROWS_WITH_AS(save_npy(tmp.file("no_such_dir/x.npy"), a), Contains("cannot open"), tg::Error);
}

}  // TEST_SUITE("io")
