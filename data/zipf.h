// Sampling ranks 0..n-1 with probability proportional to 1/(rank+1)^s (Zipf's law), the shape of
// label and word frequencies in real data.
#pragma once
#include <cstdint>
#include <vector>

#include "common/rng.h"

namespace glide::data {

class ZipfSampler {
 public:
  ZipfSampler(std::uint32_t n, double exponent);
  // A rank in [0, n): rank 0 is the most frequent.
  std::uint32_t sample(Rng& rng) const;
  // The probability of `rank`.
  double probability(std::uint32_t rank) const;
  std::uint32_t size() const { return static_cast<std::uint32_t>(cdf_.size()); }

 private:
  std::vector<double> cdf_;  // inclusive prefix sums, normalised to end at 1
};

// A cheap bijection on [0, n) (an affine map mod n with a multiplier coprime to n), so "rank r"
// becomes an id that does not give away its frequency.
class Scramble {
 public:
  Scramble(std::uint32_t n, std::uint64_t seed);
  std::uint32_t operator()(std::uint32_t rank) const {
    return static_cast<std::uint32_t>((rank * multiplier_ + offset_) % n_);
  }

 private:
  std::uint64_t n_, multiplier_, offset_;
};

// A Poisson draw with the given mean (normal approximation above 30).
std::uint32_t poisson(Rng& rng, double mean);

}  // namespace glide::data
