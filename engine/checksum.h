// XXH64, the 64-bit xxHash: the checksum of every model file section and of the file's header and
// table of contents. Chosen because it runs at memory speed on plain x86-64 (no SSE4.2 CRC
// instruction needed) and is a published, widely implemented algorithm, so other tools can check
// glide files. libzstd uses XXH64 internally but does not export it, hence this implementation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace glide::engine {

// XXH64 of `data` with `seed`, as specified at https://github.com/Cyan4973/xxHash
// (doc/xxhash_spec.md).
std::uint64_t xxh64(std::span<const std::byte> data, std::uint64_t seed = 0);

}  // namespace glide::engine
