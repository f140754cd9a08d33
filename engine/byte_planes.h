// Reversible transforms of a model file chunk's bytes before zstd (docs/model-format.md,
// encodings 2 and 3). Byte planes put byte k of every element together: the sign and exponent
// bytes of float weights repeat far more than their low mantissa bytes, which zstd then finds.
// Deltas turn a run of ascending ids (a feature's labels in the wide layer) into small numbers.
// Both are bijections on any byte string, whatever its alignment to the elements: the bytes past
// the last whole element are kept as they are.
#pragma once
#include <cstddef>
#include <span>

namespace glide::engine {

// out[k * n + i] = in[i * width + k] for the n = in.size() / width whole elements, then the
// remaining bytes. `out` has in.size() bytes; width 1 to 8.
void split_byte_planes(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);
// The inverse of split_byte_planes.
void join_byte_planes(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out);

// Each whole element (little-endian unsigned, width 2, 4 or 8) minus the one before it, modulo
// 2^(8 width); the first minus zero.
void delta_encode(std::span<std::byte> data, std::size_t width);
// The inverse: running sums.
void delta_decode(std::span<std::byte> data, std::size_t width);

}  // namespace glide::engine
