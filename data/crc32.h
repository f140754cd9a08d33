// CRC-32 (IEEE 802.3, as in zlib and PNG), for the .gds header.
#pragma once
#include <cstddef>
#include <cstdint>

namespace glide::data {

// CRC of `size` bytes; pass a previous result as `crc` to continue it over more bytes.
std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace glide::data
