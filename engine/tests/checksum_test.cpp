#include <doctest/doctest.h>
#include <zstd.h>

#include <string_view>
#include <vector>

#include "common/rng.h"
#include "engine/checksum.h"

using glide::engine::xxh64;

namespace {
std::uint64_t xxh64_of(std::string_view s, std::uint64_t seed = 0) {
  return xxh64(std::as_bytes(std::span(s.data(), s.size())), seed);
}

// zstd stores the low 32 bits of XXH64(content, seed 0) at the end of a frame written with
// checksums on: an independent reference implementation to compare against.
std::uint32_t zstd_frame_checksum(std::span<const std::byte> data) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::vector<unsigned char> frame(ZSTD_compressBound(data.size()));
  const std::size_t n = ZSTD_compress2(cctx, frame.data(), frame.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  REQUIRE_FALSE(ZSTD_isError(n));
  REQUIRE(n >= 4);
  return frame[n - 4] | frame[n - 3] << 8 | frame[n - 2] << 16 | std::uint32_t{frame[n - 1]} << 24;
}
}  // namespace

TEST_CASE("xxh64 matches published test vectors") {
  CHECK(xxh64_of("") == 0xEF46DB3751D8E999ull);
  CHECK(xxh64_of("a") == 0xD24EC4F1A98C6E5Bull);
  CHECK(xxh64_of("abc") == 0x44BC2CF5AD770999ull);
  CHECK(xxh64_of("abc", 1) != xxh64_of("abc"));
}

TEST_CASE("xxh64 agrees with zstd's frame checksums at every length path") {
  glide::Rng rng(5);
  std::vector<std::byte> buf(5000);
  for (auto& b : buf) b = std::byte(static_cast<std::uint8_t>(rng.next()));
  // Lengths below and above the 32-byte stripe, every tail size, and a long input.
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 100; ++n) lengths.push_back(n);
  lengths.push_back(1023);
  lengths.push_back(buf.size());
  for (std::size_t n : lengths) {
    CAPTURE(n);
    const auto data = std::span(buf).first(n);
    CHECK(static_cast<std::uint32_t>(xxh64(data)) == zstd_frame_checksum(data));
  }
}
