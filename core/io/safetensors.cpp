// safetensors files, as written by Hugging Face's safetensors library.
// Layout: u64 little-endian N, N bytes of JSON header, then the data buffer. The header maps each tensor
// name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} (offsets into the data buffer),
// plus an optional "__metadata__" map of strings.
#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/io/file.h"
#include "core/io/io.h"

namespace tg::io {
namespace {

using detail::Raw;
using json = nlohmann::json;

constexpr uint64_t kMaxHeader = uint64_t{100} << 20;  // the reference implementation's limit (100 MiB)
constexpr const char* kMetadataKey = "__metadata__";

struct Entry {
  std::string name;
  Raw raw = Raw::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

Raw parse_dtype(const std::string& s, const std::string& path, const std::string& name) {
  struct Item { const char* code; Raw raw; };
  static constexpr Item kTable[] = {
      {"BOOL", Raw::Bool}, {"U8", Raw::U8},   {"I8", Raw::I8},     {"I16", Raw::I16}, {"I32", Raw::I32},
      {"I64", Raw::I64},   {"F16", Raw::F16}, {"BF16", Raw::BF16}, {"F32", Raw::F32}, {"F64", Raw::F64},
  };
  for (const auto& e : kTable)
    if (s == e.code) return e.raw;
  TG_ERROR("load_safetensors: {}: tensor '{}': unsupported dtype \"{}\" (supported: F32 F64 I64 BOOL, and F16 BF16 "
           "I32 I16 I8 U8 on load)", path, name, s);
}

const char* dtype_code(DType t) {
  switch (t) {
    case DType::Bool: return "BOOL";
    case DType::Int64: return "I64";
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
  }
  return "?";
}

// A non-negative JSON integer that fits in int64 with room to multiply, or an error naming `what`.
uint64_t get_count(const json& v, const std::string& path, const std::string& name, const char* what) {
  TG_CHECK(v.is_number_integer(), "load_safetensors: {}: tensor '{}': {} entries must be integers, got {}", path,
           name, what, v.dump());
  TG_CHECK(v.is_number_unsigned(), "load_safetensors: {}: tensor '{}': negative {} entry {}", path, name, what,
           v.dump());
  uint64_t u = v.get<uint64_t>();
  TG_CHECK(u <= (uint64_t{1} << 62), "load_safetensors: {}: tensor '{}': {} entry {} is too large", path, name, what, u);
  return u;
}

Entry parse_entry(const std::string& name, const json& v, uint64_t data_size, const std::string& path) {
  TG_CHECK(v.is_object(), "load_safetensors: {}: tensor '{}': expected an object with dtype, shape and data_offsets, got {}",
           path, name, v.dump());
  for (const char* key : {"dtype", "shape", "data_offsets"})
    TG_CHECK(v.contains(key), "load_safetensors: {}: tensor '{}': missing \"{}\"", path, name, key);
  const json& dt = v["dtype"];
  const json& shape = v["shape"];
  const json& offsets = v["data_offsets"];
  TG_CHECK(dt.is_string(), "load_safetensors: {}: tensor '{}': dtype must be a string, got {}", path, name, dt.dump());
  TG_CHECK(shape.is_array(), "load_safetensors: {}: tensor '{}': shape must be an array, got {}", path, name, shape.dump());
  TG_CHECK(offsets.is_array() && offsets.size() == 2,
           "load_safetensors: {}: tensor '{}': data_offsets must be [begin, end], got {}", path, name, offsets.dump());
  TG_CHECK(shape.size() <= 64, "load_safetensors: {}: tensor '{}': more than 64 dimensions", path, name);

  Entry e;
  e.name = name;
  e.raw = parse_dtype(dt.get<std::string>(), path, name);
  int64_t numel = 1;
  for (const json& d : shape) {
    e.shape.push_back(static_cast<int64_t>(get_count(d, path, name, "shape")));
    TG_CHECK(!detail::mul_overflows(numel, e.shape.back(), &numel), "load_safetensors: {}: tensor '{}': shape is too large",
             path, name);
  }
  e.begin = get_count(offsets[0], path, name, "data_offsets");
  e.end = get_count(offsets[1], path, name, "data_offsets");
  TG_CHECK(e.begin <= e.end, "load_safetensors: {}: tensor '{}': bad data_offsets [{}, {}]: begin is after end", path,
           name, e.begin, e.end);
  TG_CHECK(e.end <= data_size,
           "load_safetensors: {}: tensor '{}': data_offsets [{}, {}] out of range: the data buffer has {} bytes "
           "(truncated file?)", path, name, e.begin, e.end, data_size);
  int64_t nbytes = 0;
  TG_CHECK(!detail::mul_overflows(numel, static_cast<int64_t>(detail::raw_size(e.raw)), &nbytes),
           "load_safetensors: {}: tensor '{}': shape is too large", path, name);
  TG_CHECK(e.end - e.begin == static_cast<uint64_t>(nbytes),
           "load_safetensors: {}: tensor '{}': data_offsets [{}, {}] span {} bytes, but shape {} of {} needs {}", path,
           name, e.begin, e.end, e.end - e.begin, shape_str(e.shape), dt.get<std::string>(), nbytes);
  return e;
}

}  // namespace

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  detail::InputFile f(path, "load_safetensors");
  TG_CHECK(f.size() >= 8, "load_safetensors: {}: truncated file: {} bytes, too short for the 8-byte header length",
           path, f.size());
  unsigned char b[8];
  f.read(b, 8, "header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(b[i]) << (8 * i);
  TG_CHECK(n <= f.remaining(), "load_safetensors: {}: header length {} is larger than the rest of the file ({} bytes): "
           "truncated or not a safetensors file", path, n, f.remaining());
  TG_CHECK(n <= kMaxHeader, "load_safetensors: {}: header length {} exceeds the 100 MiB limit", path, n);
  std::string text(n, '\0');
  f.read(text.data(), n, "header");

  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    TG_ERROR("load_safetensors: {}: corrupt header: invalid JSON: {}", path, e.what());
  }
  TG_CHECK(header.is_object(), "load_safetensors: {}: corrupt header: expected a JSON object, got {}", path,
           header.type_name());

  const uint64_t data_start = 8 + n, data_size = f.size() - data_start;
  std::vector<Entry> entries;
  std::map<std::string, std::string> meta;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey) {
      TG_CHECK(it->is_object() || it->is_null(), "load_safetensors: {}: __metadata__ must be an object, got {}", path,
               it->type_name());
      if (it->is_null()) continue;
      for (auto m = it->begin(); m != it->end(); ++m) {
        TG_CHECK(m->is_string(), "load_safetensors: {}: __metadata__ value of '{}' must be a string, got {}", path,
                 m.key(), m->dump());
        meta[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(it.key(), *it, data_size, path));
  }

  // Reject overlapping tensors (empty ones occupy nothing).
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    TG_CHECK(by_offset[i - 1]->end <= by_offset[i]->begin,
             "load_safetensors: {}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", path, by_offset[i - 1]->name,
             by_offset[i - 1]->begin, by_offset[i - 1]->end, by_offset[i]->name, by_offset[i]->begin,
             by_offset[i]->end);

  std::map<std::string, Tensor> out;
  std::vector<unsigned char> buf;
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, detail::raw_target(e.raw));
    const uint64_t nbytes = e.end - e.begin;
    f.seek(data_start + e.begin);
    if (detail::raw_is_native(e.raw)) {
      f.read(t.data_ptr(), nbytes, "tensor data");
    } else {
      buf.resize(nbytes);
      f.read(buf.data(), nbytes, "tensor data");
      detail::decode(e.raw, buf.data(), t.numel(), t.data_ptr());
    }
    out.emplace(e.name, std::move(t));
  }
  if (metadata) *metadata = std::move(meta);
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Tensors are laid out contiguously in name order (the map's order).
  std::vector<Tensor> data;
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    TG_CHECK(name != kMetadataKey, "save_safetensors: {}: \"{}\" is reserved and cannot name a tensor", path, name);
    TG_CHECK(t.defined(), "save_safetensors: {}: tensor '{}' is undefined", path, name);
    Tensor c = t.detach();
    if (!c.device().is_cpu()) c = c.to(kCPU);
    c = c.contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * element_size(c.dtype());
    header[name] = {{"dtype", dtype_code(c.dtype())}, {"shape", c.sizes()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(std::move(c));
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    TG_ERROR("save_safetensors: {}: cannot encode the header (names and metadata must be UTF-8): {}", path, e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so that the data buffer starts 8-byte aligned
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((uint64_t(text.size()) >> (8 * i)) & 0xff);

  detail::AtomicWriter w(path, "save_safetensors");
  w.write(len);
  w.write(text);
  for (const Tensor& c : data) w.write(c.data_ptr(), static_cast<uint64_t>(c.numel()) * element_size(c.dtype()));
  w.commit();
}

}  // namespace tg::io
