#include "data/shuffle.h"

#include <numeric>

#include "common/rng.h"

namespace glide::data {

std::vector<std::size_t> shuffled_order(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng rng(derive_seed(seed, 0x5A0FF1E));
  // Our own Fisher-Yates rather than std::shuffle: its draws are unspecified across library
  // versions, and the order must be the same everywhere for a seed.
  for (std::size_t i = n; i > 1; --i) {
    const std::size_t j = i <= 0xFFFFFFFFu ? rng.below(static_cast<std::uint32_t>(i))
                                           : static_cast<std::size_t>(rng.next() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

}  // namespace glide::data
