#include "engine/byte_planes.h"

#include <cstdint>
#include <cstring>

#include "common/error.h"

namespace glide::engine {

namespace {

void check(std::size_t in, std::size_t out, std::size_t width) {
  if (width == 0 || width > 8) fail("byte planes: element width " + std::to_string(width));
  if (in != out) fail("byte planes: " + std::to_string(in) + " bytes into " + std::to_string(out));
}

// Running the transform over elements of type T (the host is little-endian, as the format is).
template <class T, bool kEncode>
void delta(std::span<std::byte> data) {
  const std::size_t n = data.size() / sizeof(T);
  std::byte* p = data.data();
  T previous = 0;
  for (std::size_t i = 0; i < n; ++i, p += sizeof(T)) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    const T out = kEncode ? static_cast<T>(v - previous) : static_cast<T>(v + previous);
    previous = kEncode ? v : out;
    std::memcpy(p, &out, sizeof(T));
  }
}

template <bool kEncode>
void delta_of_width(std::span<std::byte> data, std::size_t width) {
  switch (width) {
    case 2:
      return delta<std::uint16_t, kEncode>(data);
    case 4:
      return delta<std::uint32_t, kEncode>(data);
    case 8:
      return delta<std::uint64_t, kEncode>(data);
    default:
      fail("deltas: element width " + std::to_string(width) + " (2, 4 or 8)");
  }
}

}  // namespace

namespace {

// Byte k of element i sits at i * width + k in the elements and at k * n + i in the planes.
template <bool kSplit>
inline void move_byte(const std::byte* in, std::byte* out, std::size_t element_at,
                      std::size_t plane_at) {
  if constexpr (kSplit)
    out[plane_at] = in[element_at];
  else
    out[element_at] = in[plane_at];
}

// For a width known at compile time the compiler turns the loop into wide loads and byte
// shuffles (a byte at a time for every width ran at a quarter of the speed).
template <bool kSplit, std::size_t W>
void move_fixed(const std::byte* in, std::size_t n, std::byte* out) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < W; ++k) move_byte<kSplit>(in, out, i * W + k, k * n + i);
}

template <bool kSplit>
void move_planes(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check(in.size(), out.size(), width);
  const std::size_t n = in.size() / width;
  switch (width) {
    case 2:
      move_fixed<kSplit, 2>(in.data(), n, out.data());
      break;
    case 4:
      move_fixed<kSplit, 4>(in.data(), n, out.data());
      break;
    case 8:
      move_fixed<kSplit, 8>(in.data(), n, out.data());
      break;
    default:
      for (std::size_t k = 0; k < width; ++k)
        for (std::size_t i = 0; i < n; ++i)
          move_byte<kSplit>(in.data(), out.data(), i * width + k, k * n + i);
  }
  // The bytes past the last whole element (none in an empty chunk, whose data() may be null).
  if (const std::size_t tail = in.size() - n * width; tail > 0)
    std::memcpy(out.data() + n * width, in.data() + n * width, tail);
}

}  // namespace

void split_byte_planes(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  move_planes<true>(in, width, out);
}

void join_byte_planes(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  move_planes<false>(in, width, out);
}

void delta_encode(std::span<std::byte> data, std::size_t width) {
  delta_of_width<true>(data, width);
}

void delta_decode(std::span<std::byte> data, std::size_t width) {
  delta_of_width<false>(data, width);
}

}  // namespace glide::engine
