#include "data/byte_shuffle.h"

#include <cstring>

namespace glide::data {

void shuffle_bytes(const std::uint8_t* in, std::uint8_t* out, std::size_t n, std::size_t width) {
  for (std::size_t k = 0; k < width; ++k)
    for (std::size_t i = 0; i < n; ++i) out[k * n + i] = in[i * width + k];
}

void unshuffle_bytes(const std::uint8_t* in, std::uint8_t* out, std::size_t n, std::size_t width) {
  // Whole-word assembly per element: simple loops the compiler vectorises (this runs at load).
  if (width == 4) {
    const std::uint8_t *b0 = in, *b1 = in + n, *b2 = in + 2 * n, *b3 = in + 3 * n;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t v = std::uint32_t{b0[i]} | std::uint32_t{b1[i]} << 8 |
                              std::uint32_t{b2[i]} << 16 | std::uint32_t{b3[i]} << 24;
      std::memcpy(out + 4 * i, &v, 4);
    }
    return;
  }
  if (width == 8) {
    const std::uint8_t* b[8];
    for (int k = 0; k < 8; ++k) b[k] = in + k * n;
    for (std::size_t i = 0; i < n; ++i) {
      std::uint64_t v = 0;
      for (int k = 0; k < 8; ++k) v |= std::uint64_t{b[k][i]} << (8 * k);
      std::memcpy(out + 8 * i, &v, 8);
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < width; ++k) out[i * width + k] = in[k * n + i];
}

}  // namespace glide::data
