#include "data/zipf.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"

namespace glide::data {

ZipfSampler::ZipfSampler(std::uint32_t n, double exponent) : cdf_(n) {
  if (n == 0) fail("Zipf sampler needs at least one rank");
  double sum = 0;
  for (std::uint32_t r = 0; r < n; ++r) {
    sum += std::pow(r + 1.0, -exponent);
    cdf_[r] = sum;
  }
  for (auto& c : cdf_) c /= sum;
  cdf_.back() = 1.0;
}

std::uint32_t ZipfSampler::sample(Rng& rng) const {
  const double u = rng.uniform();
  const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  return static_cast<std::uint32_t>(std::min<std::size_t>(it - cdf_.begin(), cdf_.size() - 1));
}

double ZipfSampler::probability(std::uint32_t rank) const {
  return rank == 0 ? cdf_[0] : cdf_[rank] - cdf_[rank - 1];
}

Scramble::Scramble(std::uint32_t n, std::uint64_t seed) : n_(std::max<std::uint32_t>(n, 1)) {
  Rng rng(seed);
  multiplier_ = 1 + rng.next() % n_;
  while (std::gcd(multiplier_, n_) != 1) multiplier_ = multiplier_ % n_ + 1;
  offset_ = rng.next() % n_;
}

std::uint32_t poisson(Rng& rng, double mean) {
  if (mean <= 0) return 0;
  if (mean > 30) {
    const double x = std::round(mean + std::sqrt(mean) * rng.normal());
    return x < 0 ? 0u : static_cast<std::uint32_t>(x);
  }
  // Knuth: multiply uniforms until the product drops below e^-mean.
  const double limit = std::exp(-mean);
  std::uint32_t k = 0;
  double p = rng.uniform();
  while (p > limit) {
    ++k;
    p *= rng.uniform();
  }
  return k;
}

}  // namespace glide::data
