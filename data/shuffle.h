// Random visiting orders for training: XC files are often sorted by label, so epochs should not
// walk them in file order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace glide::data {

// A permutation of 0..n-1 that depends only on (n, seed) (Fisher-Yates with glide::Rng).
std::vector<std::size_t> shuffled_order(std::size_t n, std::uint64_t seed);

}  // namespace glide::data
