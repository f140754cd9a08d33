// Random test vectors for the kernel tests (deterministic for a given Rng).
#pragma once
#include <cstddef>
#include <vector>

#include "common/rng.h"

namespace glide::engine::testing {

// n floats uniform in [lo, hi).
inline std::vector<float> randoms(std::size_t n, Rng& rng, float lo = -1, float hi = 1) {
  std::vector<float> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniformf();
  return v;
}

}  // namespace glide::engine::testing
