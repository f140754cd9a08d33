#include "data/gds_format.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <tbb/parallel_for.h>
#include <unistd.h>
#include <zstd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/file_util.h"
#include "data/byte_shuffle.h"
#include "data/crc32.h"
#include "data/threads.h"
#include "data/zstd_io.h"

namespace glide::data {

static_assert(std::endian::native == std::endian::little,
              ".gds is little-endian; this code writes native integers");

namespace {

constexpr std::size_t kHeaderBytes = 80;
// Header flag: every block holds its elements byte-shuffled (byte_shuffle.h).
constexpr std::uint32_t kFlagShuffled = 1;
// Element widths of the five arrays, in file order.
constexpr std::size_t kWidth[5] = {8, 4, 4, 8, 4};

// The fixed header, in file order (see docs/formats.md).
struct GdsHeader {
  std::uint32_t version = kGdsVersion;
  std::uint32_t header_bytes = kHeaderBytes;
  std::uint64_t num_points = 0, num_nonzeros = 0, num_label_entries = 0;
  std::uint32_t num_features = 0, num_labels = 0;
  std::uint32_t block_bytes = 0, num_blocks = 0;
  std::uint64_t payload_bytes = 0;
  std::uint32_t flags = 0, reserved = 0;
  std::uint32_t table_crc = 0;
};

template <class T>
void put(std::uint8_t* p, std::size_t at, T v) {
  std::memcpy(p + at, &v, sizeof v);
}
template <class T>
T get(const std::uint8_t* p, std::size_t at) {
  T v;
  std::memcpy(&v, p + at, sizeof v);
  return v;
}

void encode(const GdsHeader& h, std::uint8_t* p) {
  std::memcpy(p, kGdsMagic, 8);
  put(p, 8, h.version);
  put(p, 12, h.header_bytes);
  put(p, 16, h.num_points);
  put(p, 24, h.num_nonzeros);
  put(p, 32, h.num_label_entries);
  put(p, 40, h.num_features);
  put(p, 44, h.num_labels);
  put(p, 48, h.block_bytes);
  put(p, 52, h.num_blocks);
  put(p, 56, h.payload_bytes);
  put(p, 64, h.flags);
  put(p, 68, h.reserved);
  put(p, 72, h.table_crc);
  put(p, 76, crc32(p, 76));
}

GdsHeader decode(const std::uint8_t* p) {
  GdsHeader h;
  h.version = get<std::uint32_t>(p, 8);
  h.header_bytes = get<std::uint32_t>(p, 12);
  h.num_points = get<std::uint64_t>(p, 16);
  h.num_nonzeros = get<std::uint64_t>(p, 24);
  h.num_label_entries = get<std::uint64_t>(p, 32);
  h.num_features = get<std::uint32_t>(p, 40);
  h.num_labels = get<std::uint32_t>(p, 44);
  h.block_bytes = get<std::uint32_t>(p, 48);
  h.num_blocks = get<std::uint32_t>(p, 52);
  h.payload_bytes = get<std::uint64_t>(p, 56);
  h.flags = get<std::uint32_t>(p, 64);
  h.reserved = get<std::uint32_t>(p, 68);
  h.table_crc = get<std::uint32_t>(p, 72);
  return h;
}

// The byte sizes of the five arrays, in file order.
std::array<std::uint64_t, 5> section_bytes(const GdsHeader& h) {
  return {(h.num_points + 1) * 8, h.num_nonzeros * 4, h.num_nonzeros * 4, (h.num_points + 1) * 8,
          h.num_label_entries * 4};
}

struct Block {
  int section;
  std::uint64_t offset, bytes;  // within the section, uncompressed
};

std::vector<Block> plan_blocks(const std::array<std::uint64_t, 5>& sizes, std::uint64_t block) {
  std::vector<Block> blocks;
  for (int s = 0; s < 5; ++s)
    for (std::uint64_t off = 0; off < sizes[s]; off += block)
      blocks.push_back({s, off, std::min(block, sizes[s] - off)});
  return blocks;
}

}  // namespace

bool starts_with_gds_magic(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kGdsMagic, 8) == 0;
}

void write_gds(const std::string& path, const Dataset& data, const GdsWriteOptions& options) {
  data.validate(path);
  if (options.block_bytes == 0 || options.block_bytes % 8 != 0)
    fail(path, "block size must be a positive multiple of 8 bytes");
  GdsHeader h;
  h.num_points = data.num_points();
  h.num_nonzeros = data.num_nonzeros();
  h.num_label_entries = data.label_ids.size();
  h.num_features = data.num_features;
  h.num_labels = data.num_labels;
  h.block_bytes = options.block_bytes;
  h.flags = kFlagShuffled;
  const std::array<const void*, 5> arrays = {data.row_offsets.data(), data.feature_ids.data(),
                                             data.values.data(), data.label_offsets.data(),
                                             data.label_ids.data()};
  const auto blocks = plan_blocks(section_bytes(h), h.block_bytes);
  if (blocks.size() > std::numeric_limits<std::uint32_t>::max())
    fail(path, "too many blocks; use a larger block size");
  h.num_blocks = static_cast<std::uint32_t>(blocks.size());
  std::vector<std::vector<std::uint8_t>> frames(blocks.size());
  with_threads(options.threads, [&] {
    tbb::parallel_for(std::size_t{0}, blocks.size(), [&](std::size_t i) {
      const Block& b = blocks[i];
      const auto* base = static_cast<const std::uint8_t*>(arrays[b.section]);
      std::vector<std::uint8_t> planes(b.bytes);
      shuffle_bytes(base + b.offset, planes.data(), b.bytes / kWidth[b.section], kWidth[b.section]);
      frames[i] = zstd_compress(planes, options.level);
    });
  });
  std::vector<std::uint64_t> table(blocks.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    table[i] = frames[i].size();
    h.payload_bytes += frames[i].size();
  }
  h.table_crc = crc32(table.data(), table.size() * 8);
  std::uint8_t header[kHeaderBytes];
  encode(h, header);
  write_file_atomic(path, [&](std::FILE* f) {
    bool ok = std::fwrite(header, 1, kHeaderBytes, f) == kHeaderBytes &&
              std::fwrite(table.data(), 8, table.size(), f) == table.size();
    for (const auto& frame : frames)
      ok = ok && std::fwrite(frame.data(), 1, frame.size(), f) == frame.size();
    if (!ok) fail(path, "write failed");
  });
}

Dataset parse_gds(std::span<const std::uint8_t> bytes, const std::string& name, int threads,
                  std::uint64_t max_array_bytes) {
  if (bytes.empty()) fail(name, "empty file, expected a .gds dataset");
  if (!starts_with_gds_magic(bytes))
    fail(name, "not a .gds file (the magic 'GLIDEGDS' is missing)");
  if (bytes.size() < kHeaderBytes)
    fail(name, "truncated .gds file: expected a " + std::to_string(kHeaderBytes) +
                   "-byte header, got " + std::to_string(bytes.size()) + " bytes");
  const std::uint8_t* p = bytes.data();
  const GdsHeader h = decode(p);
  if (h.version != kGdsVersion)
    fail(name, "unsupported .gds version " + std::to_string(h.version) + " (this build reads " +
                   std::to_string(kGdsVersion) + ")");
  if (get<std::uint32_t>(p, 76) != crc32(p, 76))
    fail(name, "corrupt .gds file: the header checksum does not match");
  if ((h.flags & ~kFlagShuffled) != 0)
    fail(name, "unsupported .gds file: unknown flags " + std::to_string(h.flags));
  if (h.header_bytes != kHeaderBytes || h.block_bytes == 0 || h.block_bytes % 8 != 0 ||
      h.num_points >= (std::uint64_t{1} << 40) || h.num_nonzeros >= (std::uint64_t{1} << 40) ||
      h.num_label_entries >= (std::uint64_t{1} << 40))
    fail(name, "corrupt .gds file: impossible sizes in the header");
  const auto sizes = section_bytes(h);
  std::uint64_t total = 0;
  for (auto s : sizes) total += s;
  if (total > max_array_bytes)
    fail(name, "the dataset needs " + std::to_string(total) + " bytes, more than the limit of " +
                   std::to_string(max_array_bytes));
  const auto blocks = plan_blocks(sizes, h.block_bytes);
  if (blocks.size() != h.num_blocks)
    fail(name, "corrupt .gds file: the block count disagrees with the array sizes");
  const std::uint64_t table_end = kHeaderBytes + std::uint64_t{h.num_blocks} * 8;
  const std::uint64_t expected = table_end + h.payload_bytes;
  if (bytes.size() < expected)
    fail(name, "truncated .gds file: expected " + std::to_string(expected) + " bytes, got " +
                   std::to_string(bytes.size()));
  if (bytes.size() > expected)
    fail(name, "corrupt .gds file: " + std::to_string(bytes.size() - expected) +
                   " unexpected bytes after the data");
  if (crc32(p + kHeaderBytes, h.num_blocks * std::size_t{8}) != h.table_crc)
    fail(name, "corrupt .gds file: the block table checksum does not match");
  std::vector<std::uint64_t> frame_offset(blocks.size() + 1, table_end);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto size = get<std::uint64_t>(p, kHeaderBytes + i * 8);
    if (size > h.payload_bytes) fail(name, "corrupt .gds file: impossible block size");
    frame_offset[i + 1] = frame_offset[i] + size;
  }
  if (frame_offset.back() != expected)
    fail(name, "corrupt .gds file: the block sizes disagree with the payload size");

  Dataset d;
  d.num_features = h.num_features;
  d.num_labels = h.num_labels;
  d.row_offsets.resize(h.num_points + 1);
  d.feature_ids.resize(h.num_nonzeros);
  d.values.resize(h.num_nonzeros);
  d.label_offsets.resize(h.num_points + 1);
  d.label_ids.resize(h.num_label_entries);
  const std::array<std::uint8_t*, 5> arrays = {
      reinterpret_cast<std::uint8_t*>(d.row_offsets.data()),
      reinterpret_cast<std::uint8_t*>(d.feature_ids.data()),
      reinterpret_cast<std::uint8_t*>(d.values.data()),
      reinterpret_cast<std::uint8_t*>(d.label_offsets.data()),
      reinterpret_cast<std::uint8_t*>(d.label_ids.data())};
  // Each block decompresses straight into its place; errors are collected, the first reported.
  std::vector<std::string> errors(blocks.size());
  const bool shuffled = h.flags & kFlagShuffled;
  with_threads(threads, [&] {
    tbb::parallel_for(std::size_t{0}, blocks.size(), [&](std::size_t i) {
      thread_local std::vector<std::uint8_t> planes;
      const Block& b = blocks[i];
      const std::uint8_t* src = p + frame_offset[i];
      const std::size_t src_size = frame_offset[i + 1] - frame_offset[i];
      const std::string where = "corrupt .gds file: block " + std::to_string(i) + ": ";
      // Byte 4 of a zstd frame is its header descriptor; bit 2 says a checksum follows the data.
      if (src_size < 5 || !starts_with_zstd_magic({src, src_size})) {
        errors[i] = where + "not a zstd frame";
        return;
      }
      const bool has_checksum = (src[4] >> 2) & 1;
      if (ZSTD_getFrameContentSize(src, src_size) != b.bytes || !has_checksum) {
        errors[i] = where + "the frame does not declare the expected size and a checksum";
        return;
      }
      std::uint8_t* dst = arrays[b.section] + b.offset;
      if (shuffled) {
        if (planes.size() < b.bytes) planes.resize(b.bytes);
        dst = planes.data();
      }
      const std::size_t got = ZSTD_decompress(dst, b.bytes, src, src_size);
      if (ZSTD_isError(got)) {
        errors[i] = where + ZSTD_getErrorName(got);
      } else if (got != b.bytes) {
        errors[i] = where + "decompressed to the wrong size";
      } else if (shuffled) {
        unshuffle_bytes(dst, arrays[b.section] + b.offset, b.bytes / kWidth[b.section],
                        kWidth[b.section]);
      }
    });
  });
  for (const auto& e : errors)
    if (!e.empty()) fail(name, e);
  d.validate(name);
  return d;
}

Dataset read_gds(const std::string& path, int threads) {
  // Mapping the file avoids a copy of the compressed bytes; loading speed is the format's point.
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(err));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return parse_gds({}, path, threads);
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(path, std::string("cannot map: ") + std::strerror(errno));
  struct Unmap {
    void* p;
    std::size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{map, size};
  return parse_gds({static_cast<const std::uint8_t*>(map), size}, path, threads);
}

}  // namespace glide::data
