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

// Element by element, for a width known at compile time: the compiler turns these into wide
// loads and byte shuffles (a byte at a time for every width ran at a quarter of the speed).
template <std::size_t W>
void split_fixed(const std::byte* in, std::size_t n, std::byte* out) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < W; ++k) out[k * n + i] = in[i * W + k];
}
template <std::size_t W>
void join_fixed(const std::byte* in, std::size_t n, std::byte* out) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < W; ++k) out[i * W + k] = in[k * n + i];
}

}  // namespace

void split_byte_planes(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check(in.size(), out.size(), width);
  const std::size_t n = in.size() / width;
  switch (width) {
    case 2:
      split_fixed<2>(in.data(), n, out.data());
      break;
    case 4:
      split_fixed<4>(in.data(), n, out.data());
      break;
    case 8:
      split_fixed<8>(in.data(), n, out.data());
      break;
    default:
      for (std::size_t k = 0; k < width; ++k)
        for (std::size_t i = 0; i < n; ++i) out[k * n + i] = in[i * width + k];
  }
  std::memcpy(out.data() + n * width, in.data() + n * width, in.size() - n * width);
}

void join_byte_planes(std::span<const std::byte> in, std::size_t width, std::span<std::byte> out) {
  check(in.size(), out.size(), width);
  const std::size_t n = in.size() / width;
  switch (width) {
    case 2:
      join_fixed<2>(in.data(), n, out.data());
      break;
    case 4:
      join_fixed<4>(in.data(), n, out.data());
      break;
    case 8:
      join_fixed<8>(in.data(), n, out.data());
      break;
    default:
      for (std::size_t k = 0; k < width; ++k)
        for (std::size_t i = 0; i < n; ++i) out[i * width + k] = in[k * n + i];
  }
  std::memcpy(out.data() + n * width, in.data() + n * width, in.size() - n * width);
}

void delta_encode(std::span<std::byte> data, std::size_t width) {
  delta_of_width<true>(data, width);
}

void delta_decode(std::span<std::byte> data, std::size_t width) {
  delta_of_width<false>(data, width);
}

}  // namespace glide::engine
