// NumPy .npy files (format versions 1.0, 2.0 and 3.0).
// Layout: "\x93NUMPY", major, minor, header length (u16 for 1.0, u32 for 2.0/3.0), a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and '\n', then the raw data.
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/file.h"
#include "core/io/io.h"

namespace tg::io {
namespace {

using detail::Raw;

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct NpyHeader {
  Raw raw = Raw::F32;
  bool fortran_order = false;
  Shape shape;
};

// The dtype string, e.g. '<f4'. Byte order: '<' little, '=' native, '|' not applicable, '>' big.
Raw parse_descr(const std::string& d, const std::string& path) {
  std::string_view s = d;
  char order = '=';
  if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '=' || s[0] == '|')) {
    order = s[0];
    s.remove_prefix(1);
  }
  struct Entry { std::string_view code; Raw raw; };
  static constexpr Entry kTable[] = {
      {"b1", Raw::Bool}, {"u1", Raw::U8},  {"i1", Raw::I8},  {"i2", Raw::I16}, {"i4", Raw::I32},
      {"i8", Raw::I64},  {"f2", Raw::F16}, {"f4", Raw::F32}, {"f8", Raw::F64},
  };
  for (const auto& e : kTable) {
    if (s != e.code) continue;
    TG_CHECK(order != '>' || detail::raw_size(e.raw) == 1,
             "load_npy: {}: big-endian dtype '{}' is not supported (convert with arr.astype(arr.dtype.newbyteorder('<')))",
             path, d);
    return e.raw;
  }
  TG_ERROR("load_npy: {}: unsupported dtype '{}' (supported: <f4 <f8 <i8 |b1, and <f2 <i4 <i2 |i1 |u1 on load)", path, d);
}

// A hand parser for the header's Python dict literal; rejects anything it does not understand.
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& path) : s_(s), path_(path) {}

  NpyHeader parse() {
    NpyHeader h;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    ws();
    expect('{');
    while (true) {
      ws();
      if (peek() == '}') break;
      std::string key = string();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (seen_descr) fail("duplicate key 'descr'");
        if (peek() == '[') fail("structured dtypes (a list descr) are not supported");
        h.raw = parse_descr(string(), path_);
        seen_descr = true;
      } else if (key == "fortran_order") {
        if (seen_fortran) fail("duplicate key 'fortran_order'");
        h.fortran_order = boolean();
        seen_fortran = true;
      } else if (key == "shape") {
        if (seen_shape) fail("duplicate key 'shape'");
        h.shape = tuple();
        seen_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    expect('}');
    ws();
    if (i_ != s_.size()) fail("trailing characters after the dict");
    if (!seen_descr) fail("missing key 'descr'");
    if (!seen_fortran) fail("missing key 'fortran_order'");
    if (!seen_shape) fail("missing key 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::string shown(s_.substr(0, 160));
    TG_ERROR("load_npy: {}: malformed header: {} at character {} of \"{}{}\"", path_, what, i_, shown,
             s_.size() > 160 ? "..." : "");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string string() {
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out += s_[i_++];
    }
    if (i_ >= s_.size()) fail("unterminated string");
    ++i_;
    return out;
  }
  bool boolean() {
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  int64_t integer() {
    if (peek() == '-') fail("negative dimension in shape");
    if (peek() < '0' || peek() > '9') fail("expected a dimension (a non-negative integer)");
    int64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      if (v > (int64_t{1} << 58)) fail("dimension too large");
      v = v * 10 + (s_[i_++] - '0');
    }
    if (peek() == 'L') ++i_;  // Python 2 longs
    return v;
  }
  Shape tuple() {
    Shape out;
    expect('(');
    while (true) {
      ws();
      if (peek() == ')') break;
      out.push_back(integer());
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in shape");
    }
    expect(')');
    if (out.size() > 64) fail("more than 64 dimensions");
    return out;
  }

  std::string_view s_;
  const std::string& path_;
  size_t i_ = 0;
};

// Reorders n items of `item` bytes from column-major (Fortran) to row-major (C) order.
void fortran_to_c(const unsigned char* src, unsigned char* dst, const Shape& shape, size_t item) {
  const int64_t n = shape_numel(shape), nd = static_cast<int64_t>(shape.size());
  if (n == 0) return;
  Shape fstride(nd, 1);
  for (int64_t k = 1; k < nd; ++k) fstride[k] = fstride[k - 1] * shape[k - 1];
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t c = 0; c < n; ++c) {
    std::memcpy(dst + c * item, src + off * item, item);
    for (int64_t k = nd - 1; k >= 0; --k) {  // odometer over the C-order index, last dim fastest
      if (++idx[k] < shape[k]) {
        off += fstride[k];
        break;
      }
      off -= (shape[k] - 1) * fstride[k];
      idx[k] = 0;
    }
  }
}

const char* descr_of(DType t) {
  switch (t) {
    case DType::Bool: return "|b1";
    case DType::Int64: return "<i8";
    case DType::Float32: return "<f4";
    case DType::Float64: return "<f8";
  }
  return "?";
}

}  // namespace

Tensor load_npy(const std::string& path) {
  detail::InputFile f(path, "load_npy");
  unsigned char magic[kMagicLen] = {};
  TG_CHECK(f.size() >= kMagicLen + 2, "load_npy: {}: bad magic: file is {} bytes, too short to be an .npy file",
           path, f.size());
  f.read(magic, kMagicLen, "magic");
  TG_CHECK(std::memcmp(magic, kMagic, kMagicLen) == 0,
           "load_npy: {}: bad magic: not an .npy file (expected the bytes \\x93NUMPY)", path);
  unsigned char version[2];
  f.read(version, 2, "version");
  TG_CHECK(version[0] >= 1 && version[0] <= 3, "load_npy: {}: unsupported format version {}.{} (expected 1.0, 2.0 or 3.0)",
           path, version[0], version[1]);
  uint64_t header_len = 0;
  if (version[0] == 1) {
    unsigned char b[2];
    f.read(b, 2, "header length");
    header_len = b[0] | (uint64_t(b[1]) << 8);
  } else {
    unsigned char b[4];
    f.read(b, 4, "header length");
    header_len = b[0] | (uint64_t(b[1]) << 8) | (uint64_t(b[2]) << 16) | (uint64_t(b[3]) << 24);
  }
  TG_CHECK(header_len <= f.remaining(), "load_npy: {}: truncated header: it claims {} bytes but only {} follow",
           path, header_len, f.remaining());
  std::string text(header_len, '\0');
  f.read(text.data(), header_len, "header");
  NpyHeader h = HeaderParser(text, path).parse();

  const size_t item = detail::raw_size(h.raw);
  int64_t numel = 1, nbytes = 0;
  for (int64_t d : h.shape)
    TG_CHECK(!detail::mul_overflows(numel, d, &numel), "load_npy: {}: shape {} is too large", path, shape_str(h.shape));
  TG_CHECK(!detail::mul_overflows(numel, static_cast<int64_t>(item), &nbytes), "load_npy: {}: shape {} is too large",
           path, shape_str(h.shape));
  TG_CHECK(static_cast<uint64_t>(nbytes) <= f.remaining(),
           "load_npy: {}: truncated data: shape {} of {}-byte elements needs {} bytes after the header, the file has {}",
           path, shape_str(h.shape), item, nbytes, f.remaining());

  Tensor out = empty(h.shape, detail::raw_target(h.raw));
  const bool reorder = h.fortran_order && h.shape.size() > 1;
  if (detail::raw_is_native(h.raw) && !reorder) {
    f.read(out.data_ptr(), nbytes, "data");
    return out;
  }
  std::vector<unsigned char> buf(nbytes);
  f.read(buf.data(), nbytes, "data");
  if (reorder) {
    std::vector<unsigned char> c_order(nbytes);
    fortran_to_c(buf.data(), c_order.data(), h.shape, item);
    buf.swap(c_order);
  }
  detail::decode(h.raw, buf.data(), numel, out.data_ptr());
  return out;
}

void save_npy(const std::string& path, const Tensor& t) {
  TG_CHECK(t.defined(), "save_npy: {}: the tensor is undefined", path);
  Tensor c = t.detach();
  if (!c.device().is_cpu()) c = c.to(kCPU);
  c = c.contiguous();

  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': (", descr_of(c.dtype()));
  const Shape& sz = c.sizes();
  for (size_t i = 0; i < sz.size(); ++i) dict += fmt::format("{}{}", sz[i], i + 1 < sz.size() ? ", " : sz.size() == 1 ? "," : "");
  dict += "), }";
  // Pad with spaces so that magic + version + length + dict + '\n' is a multiple of 64 bytes, as NumPy does.
  const bool v1 = dict.size() + 1 + 10 <= 65535;
  const size_t prefix = v1 ? 10 : 12;
  size_t total = prefix + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';

  std::string head(kMagic, kMagicLen);
  head += static_cast<char>(v1 ? 1 : 2);
  head += '\0';
  uint64_t len = dict.size();
  for (size_t i = 0; i < (v1 ? 2u : 4u); ++i) head += static_cast<char>((len >> (8 * i)) & 0xff);

  detail::AtomicWriter w(path, "save_npy");
  w.write(head);
  w.write(dict);
  w.write(c.data_ptr(), c.numel() * element_size(c.dtype()));
  w.commit();
}

}  // namespace tg::io
