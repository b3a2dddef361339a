// Internal to core/io: a checked binary reader and an atomic writer (temp file + fsync + rename).
// Every failure throws tg::Error naming the caller ("load_npy", ...) and the file.
#pragma once
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/error.h"

namespace tg::io::detail {

// Reads a whole file front to back; knows its size, so callers can check lengths before reading.
class InputFile {
 public:
  InputFile(const std::string& path, const char* op) : path_(path), op_(op) {
    std::error_code ec;
    TG_CHECK(!std::filesystem::is_directory(path, ec), "{}: {}: is a directory, not a file", op, path);
    f_ = std::fopen(path.c_str(), "rb");
    TG_CHECK(f_ != nullptr, "{}: {}: cannot open for reading: {}", op, path, std::strerror(errno));
    auto size = std::filesystem::file_size(path, ec);
    if (ec) {
      std::fclose(f_);
      TG_ERROR("{}: {}: cannot get the file size: {}", op, path, ec.message());
    }
    size_ = size;
  }
  ~InputFile() {
    if (f_) std::fclose(f_);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  uint64_t size() const { return size_; }
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  // Reads exactly n bytes; `what` says what they are, for the error message.
  void read(void* dst, uint64_t n, const char* what) {
    TG_CHECK(n <= remaining(), "{}: {}: truncated {}: need {} bytes at offset {}, but the file has {} bytes",
             op_, path_, what, n, pos_, size_);
    if (n == 0) return;
    size_t got = std::fread(dst, 1, n, f_);
    TG_CHECK(got == n, "{}: {}: read error in {} at offset {}: {}", op_, path_, what, pos_, std::strerror(errno));
    pos_ += n;
  }

  void seek(uint64_t off) {
    TG_CHECK(off <= size_, "{}: {}: offset {} is past the end of the file ({} bytes)", op_, path_, off, size_);
    TG_CHECK(fseeko(f_, static_cast<off_t>(off), SEEK_SET) == 0, "{}: {}: seek failed: {}", op_, path_,
             std::strerror(errno));
    pos_ = off;
  }

 private:
  std::string path_;
  const char* op_;
  std::FILE* f_ = nullptr;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
};

// Writes to `path + ".tmp"`; commit() flushes, fsyncs and renames it over path.
// Without commit() (an exception on the way) the temp file is removed and path is untouched.
class AtomicWriter {
 public:
  AtomicWriter(const std::string& path, const char* op) : path_(path), tmp_(path + ".tmp"), op_(op) {
    f_ = std::fopen(tmp_.c_str(), "wb");
    TG_CHECK(f_ != nullptr, "{}: {}: cannot open the temporary file {} for writing: {}", op, path, tmp_,
             std::strerror(errno));
  }
  ~AtomicWriter() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void write(const void* src, uint64_t n) {
    if (n == 0) return;
    TG_CHECK(std::fwrite(src, 1, n, f_) == n, "{}: {}: write to {} failed: {}", op_, path_, tmp_,
             std::strerror(errno));
  }
  void write(const std::string& s) { write(s.data(), s.size()); }

  void commit() {
    bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
    int err = errno;
    ok = (std::fclose(f_) == 0) && ok;
    f_ = nullptr;
    if (!ok) {
      std::remove(tmp_.c_str());
      TG_ERROR("{}: {}: flushing {} failed: {}", op_, path_, tmp_, std::strerror(err));
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      err = errno;
      std::remove(tmp_.c_str());
      TG_ERROR("{}: {}: renaming {} over it failed: {}", op_, path_, tmp_, std::strerror(err));
    }
    // fsync the directory too, so the rename itself survives a power loss (best effort: the file is already safe).
    std::string dir = std::filesystem::path(path_).parent_path().string();
    if (int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY); fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }

 private:
  std::string path_, tmp_;
  const char* op_;
  std::FILE* f_ = nullptr;
};

static_assert(std::endian::native == std::endian::little, "tapegrad's file formats assume a little-endian host");

// Element types as stored in files. Each decodes to a tapegrad dtype: the small ints widen to int64,
// float16 and bfloat16 to float32, and bool bytes are normalised to 0/1.
enum class Raw : uint8_t { Bool, U8, I8, I16, I32, I64, F16, BF16, F32, F64 };

inline size_t raw_size(Raw r) {
  switch (r) {
    case Raw::Bool: case Raw::U8: case Raw::I8: return 1;
    case Raw::I16: case Raw::F16: case Raw::BF16: return 2;
    case Raw::I32: case Raw::F32: return 4;
    case Raw::I64: case Raw::F64: return 8;
  }
  return 0;
}

inline DType raw_target(Raw r) {
  switch (r) {
    case Raw::Bool: return kBool;
    case Raw::U8: case Raw::I8: case Raw::I16: case Raw::I32: case Raw::I64: return kInt64;
    case Raw::F16: case Raw::BF16: case Raw::F32: return kFloat32;
    case Raw::F64: return kFloat64;
  }
  return kFloat32;
}

// True when the bytes in the file are already the tensor's bytes.
inline bool raw_is_native(Raw r) { return r == Raw::I64 || r == Raw::F32 || r == Raw::F64; }

inline float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf or nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);  // normal: rebias 15 -> 127
  } else if (man == 0) {
    bits = sign;  // signed zero
  } else {      // subnormal: value is man * 2^-24
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  return std::bit_cast<float>(bits);
}

// Decodes n elements of raw type r at src (any alignment) into dst, a buffer of raw_target(r).
inline void decode(Raw r, const unsigned char* src, int64_t n, void* dst) {
  auto widen = [&]<class S, class D>(auto conv) {
    D* out = static_cast<D*>(dst);
    for (int64_t i = 0; i < n; ++i) {
      S v;
      std::memcpy(&v, src + i * sizeof(S), sizeof(S));
      out[i] = conv(v);
    }
  };
  auto same = [](auto v) { return v; };
  switch (r) {
    case Raw::Bool: {
      bool* out = static_cast<bool*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = src[i] != 0;
      return;
    }
    case Raw::U8: return widen.template operator()<uint8_t, int64_t>(same);
    case Raw::I8: return widen.template operator()<int8_t, int64_t>(same);
    case Raw::I16: return widen.template operator()<int16_t, int64_t>(same);
    case Raw::I32: return widen.template operator()<int32_t, int64_t>(same);
    case Raw::F16: return widen.template operator()<uint16_t, float>([](uint16_t h) { return half_to_float(h); });
    case Raw::BF16:
      return widen.template operator()<uint16_t, float>(
          [](uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); });
    case Raw::I64: case Raw::F32: case Raw::F64:
      if (n > 0) std::memcpy(dst, src, n * raw_size(r));
      return;
  }
}

// Sets *out = a * b; true when that overflows int64 (sizes read from a file are untrusted).
inline bool mul_overflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace tg::io::detail
