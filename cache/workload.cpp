#include "cache/workload.h"

#include <algorithm>
#include <numeric>

#include "common/error.h"

namespace glide::cache {

Workload::Workload(std::size_t points, WorkloadOptions options)
    : options_(options), perm_(points), rng_(derive_seed(options.seed, 7)) {
  if (points == 0) fail("workload over no points");
  if (options_.skew < 0) fail("--skew", "must be >= 0");
  if (options_.drift < 0) fail("--drift", "must be >= 0");
  std::iota(perm_.begin(), perm_.end(), 0u);
  Rng shuffle(derive_seed(options.seed, 8));
  std::shuffle(perm_.begin(), perm_.end(), shuffle);
  if (options_.skew > 0)
    zipf_ = std::make_unique<data::ZipfSampler>(static_cast<std::uint32_t>(points), options_.skew);
}

std::size_t Workload::next() {
  const std::size_t n = perm_.size();
  const std::uint64_t shift =
      options_.drift > 0 ? static_cast<std::uint64_t>(t_ / options_.drift) : 0;
  ++t_;
  const std::size_t rank = zipf_ ? zipf_->sample(rng_) : rng_.below(static_cast<std::uint32_t>(n));
  return perm_[(rank + shift) % n];
}

}  // namespace glide::cache
