// The byte layout of a model file shared by its writer (model_file_writer.cpp) and reader
// (model_file.cpp): constants of docs/model-format.md and little-endian field encoding. Internal
// to the engine.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "engine/model_file.h"

namespace glide::engine::model_format {

// ---- Layout constants (docs/model-format.md) ----
inline constexpr char kMagic[8] = {'G', 'L', 'I', 'D', 'E', 'M', 'D', 'L'};
// The newest version read and written. A file none of whose chunks needs version 2's encodings
// is written as version 1, which every glide reads.
inline constexpr std::uint32_t kFormatVersion = 2;
inline constexpr std::uint32_t kFormatVersionPlain = 1;
inline constexpr std::uint32_t kHeaderBytes = 64;
inline constexpr std::uint64_t kHeaderChecksumOffset = 56;
inline constexpr std::size_t kMaxRank = 4;
// name length (u16) + dtype (u8) + rank (u8) + flags (u32) + 4 dims + offset + stored + raw
// (u64 each) + chunk_bytes (u32) + checksum (u64); the name's bytes come on top.
inline constexpr std::uint64_t kTocEntryFixedBytes =
    2 + 1 + 1 + 4 + 8 * kMaxRank + 8 + 8 + 8 + 4 + 8;
inline constexpr std::uint64_t kChunkHeaderBytes = 8;  // stored size (u32) + encoding (u32)
inline constexpr std::uint32_t kMaxChunkBytes = 64u << 20;
inline constexpr std::uint32_t kEncodingRaw = 0;
inline constexpr std::uint32_t kEncodingZstd = 1;
// Version 2: zstd of the chunk's byte planes (engine/byte_planes.h), elements of the section's
// dtype; and of the byte planes of its elements' deltas (integer dtypes).
inline constexpr std::uint32_t kEncodingPlanes = 2;
inline constexpr std::uint32_t kEncodingDeltaPlanes = 3;
// The element width of a section of `dtype` that may have encoding 2 (0: it may not), and whether
// it may have encoding 3 (integers).
inline std::size_t plane_width(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return 2;
    case DType::kF32:
    case DType::kI32:
    case DType::kU32:
      return 4;
    case DType::kU64:
      return 8;
    default:
      return 0;
  }
}
inline bool deltas_allowed(DType dtype) {
  return dtype == DType::kI32 || dtype == DType::kU32 || dtype == DType::kU64;
}
// A zstd block yields at most 128 KiB from no fewer than 4 stored bytes (an RLE block), so no
// honest chunk expands more than 32768x. Twice that bounds what a damaged table of contents can
// make the reader allocate: at most 64 KiB per byte actually present in the file.
inline constexpr std::uint64_t kMaxExpansion = 65536;
inline constexpr std::uint8_t kDTypeCount = 9;
// Fuzzing builds skip the header and table-of-contents checksums so that mutated inputs reach the
// structural checks behind them (libFuzzer cannot forge an XXH64). Never set in real builds.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
inline constexpr bool kCheckStructureChecksums = false;
#else
inline constexpr bool kCheckStructureChecksums = true;
#endif

// ---- Little-endian encoding, independent of the host's byte order ----
class ByteSink {
 public:
  void u8(std::uint8_t v) { bytes_.push_back(std::byte{v}); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  std::vector<std::byte>& bytes() { return bytes_; }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
      bytes_.push_back(std::byte(static_cast<std::uint8_t>(v >> (8 * i))));
  }
  std::vector<std::byte> bytes_;
};

// Reads little-endian fields with a bounds check on every read: file contents are untrusted.
class ByteCursor {
 public:
  ByteCursor(std::span<const std::byte> bytes, const std::string& path, const char* what)
      : bytes_(bytes), path_(path), what_(what) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  std::uint64_t u64() { return le(8); }
  std::string str(std::size_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  void need(std::size_t n) const {
    if (remaining() < n)
      fail(path_, std::string(what_) + " is corrupted (ends in the middle of a field)");
  }
  std::uint64_t le(int n) {
    need(static_cast<std::size_t>(n));
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(bytes_[pos_ + i]) << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  std::span<const std::byte> bytes_;
  const std::string& path_;
  const char* what_;
  std::size_t pos_ = 0;
};

inline std::uint64_t load_le(const std::byte* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

inline std::string quoted_name(std::string_view name) {
  std::string q(1, '\'');  // appended piecewise: "'" + s trips a GCC 12 -Wrestrict false positive
  q.append(name);
  q += '\'';
  return q;
}

// Product of `shape` times `element_bytes`; false on overflow.
inline bool shape_bytes(std::span<const std::uint64_t> shape, std::uint64_t element_bytes,
                        std::uint64_t& bytes) {
  std::uint64_t n = element_bytes;
  for (std::uint64_t d : shape) {
    if (d != 0 && n > UINT64_MAX / d) return false;
    n *= d;
  }
  bytes = n;
  return true;
}

inline std::uint64_t chunk_count(std::uint64_t raw_bytes, std::uint32_t chunk_bytes) {
  return raw_bytes == 0 ? 0 : (raw_bytes - 1) / chunk_bytes + 1;
}

}  // namespace glide::engine::model_format
