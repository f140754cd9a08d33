#include "hashing/densify.h"

#include "hashing/hash_family.h"

namespace glide::hashing {

void densify(const std::uint32_t* in, std::uint32_t* out, std::size_t num_bins, std::uint32_t empty,
             std::uint64_t seed) {
  std::size_t nonempty = 0;
  for (std::size_t b = 0; b < num_bins; ++b) nonempty += in[b] != empty;
  if (nonempty == 0) {
    for (std::size_t b = 0; b < num_bins; ++b) out[b] = 0;
    return;
  }
  // Random probes find a nonempty bin after num_bins/nonempty tries on average; past kMaxProbes
  // (very sparse inputs) walk forward from the last probe so the cost stays bounded.
  constexpr std::uint32_t kMaxProbes = 64;
  for (std::size_t b = 0; b < num_bins; ++b) {
    if (in[b] != empty) {
      out[b] = in[b];
      continue;
    }
    std::size_t j = b;
    for (std::uint32_t attempt = 1; attempt <= kMaxProbes; ++attempt) {
      const std::uint64_t h = mix64(seed ^ (std::uint64_t{b} << 24) ^ attempt);
      j = static_cast<std::size_t>(((h >> 32) * num_bins) >> 32);
      if (in[j] != empty) break;
    }
    while (in[j] == empty) j = j + 1 == num_bins ? 0 : j + 1;
    out[b] = in[j];
  }
}

}  // namespace glide::hashing
