// glide's binary dataset format (.gds): a checksummed header, then the five CSR arrays cut into
// blocks, each a zstd frame with its own checksum, so loading is a parallel decompression and a
// validation pass. The layout is documented in docs/formats.md.
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <string>

#include "data/dataset.h"

namespace glide::data {

inline constexpr std::uint32_t kGdsVersion = 1;
inline constexpr char kGdsMagic[8] = {'G', 'L', 'I', 'D', 'E', 'G', 'D', 'S'};

struct GdsWriteOptions {
  int level = 3;                         // zstd level (1..19)
  int threads = 0;                       // compression threads; 0: every core
  std::uint32_t block_bytes = 4u << 20;  // uncompressed bytes per block
};

// Writes `data` (validated first) to `path` atomically.
void write_gds(const std::string& path, const Dataset& data, const GdsWriteOptions& options = {});
// Reads a .gds file. Truncated or corrupt files, wrong versions and data that breaks the CSR
// invariants are glide::Error naming the file and what is wrong.
Dataset read_gds(const std::string& path, int threads = 0);
// The same for bytes in memory; `name` stands for the file in messages. Files whose arrays would
// take more than `max_array_bytes` are refused (fuzzers bound memory with it).
Dataset parse_gds(std::span<const std::uint8_t> bytes, const std::string& name, int threads = 0,
                  std::uint64_t max_array_bytes = std::numeric_limits<std::uint64_t>::max());
// True when `bytes` starts with the .gds magic.
bool starts_with_gds_magic(std::span<const std::uint8_t> bytes);

}  // namespace glide::data
