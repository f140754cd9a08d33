// Byte-plane transposition ("shuffle", as in Blosc): n elements of `width` bytes become `width`
// planes, byte 0 of every element first, then byte 1, ... Sizes, ids and floats keep most of their
// redundancy in their high bytes, which then sit together and compress to almost nothing, while
// the random low bytes are stored raw by zstd (a memcpy to decompress). That makes .gds both
// smaller and several times faster to load than compressing the arrays as they are.
#pragma once
#include <cstddef>
#include <cstdint>

namespace glide::data {

// width is 4 or 8; `in` and `out` hold n * width bytes and do not overlap.
void shuffle_bytes(const std::uint8_t* in, std::uint8_t* out, std::size_t n, std::size_t width);
void unshuffle_bytes(const std::uint8_t* in, std::uint8_t* out, std::size_t n, std::size_t width);

}  // namespace glide::data
