// Request streams for cache experiments: indices into a set of points (a test set), drawn with
// Zipf popularity over the points (skew s: the r-th most popular point has weight 1/(r+1)^s),
// popularity that drifts (every `drift` requests the ranking rotates by one point, so the hot
// points slowly change), or uniformly (skew 0: the worst case for any cache).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "common/rng.h"
#include "data/zipf.h"

namespace glide::cache {

struct WorkloadOptions {
  double skew = 1.0;       // Zipf exponent over points; 0: uniform
  double drift = 0;        // requests per one-step rotation of the ranking; 0: no drift
  std::uint64_t seed = 1;  // also fixes which points are popular
};

class Workload {
 public:
  Workload(std::size_t points, WorkloadOptions options);
  // The next request's point index.
  std::size_t next();
  std::uint64_t requests() const { return t_; }

 private:
  WorkloadOptions options_;
  std::vector<std::uint32_t> perm_;  // rank -> point
  std::unique_ptr<data::ZipfSampler> zipf_;
  Rng rng_;
  std::uint64_t t_ = 0;
};

}  // namespace glide::cache
