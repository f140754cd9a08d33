#include "hashing/doph_hash.h"

#include <numeric>

#include "common/rng.h"
#include "hashing/densify.h"
#include "hashing/hash_kernels.h"

namespace glide::hashing {

DophHash::DophHash(const HashConfig& config)
    : HashFamily(config),
      num_bins_(config.K * config.L),
      permutation_(config.dim),
      probe_seed_(derive_seed(config.seed, 6)) {
  set_value_bits(32);  // positions are wide: always mixed into the bucket id
  std::iota(permutation_.begin(), permutation_.end(), 0u);
  Rng rng(derive_seed(config.seed, 5));
  for (std::uint32_t i = config.dim - 1; i > 0; --i)
    std::swap(permutation_[i], permutation_[rng.below(i + 1)]);
}

void DophHash::begin(std::uint32_t* raw) const {
  for (std::uint32_t b = 0; b < num_bins_; ++b) raw[b] = kernels::kEmptyBin;
}

void DophHash::finish(const std::uint32_t* raw, std::uint32_t* buckets_out) const {
  std::uint32_t* values = thread_scratch<std::uint32_t, 1>(num_bins_);
  densify(raw, values, num_bins_, kernels::kEmptyBin, probe_seed_);
  combine(values, buckets_out);
}

void DophHash::hash_dense(const float* x, std::uint32_t* buckets_out) const {
  std::uint32_t* raw = thread_scratch<std::uint32_t, 0>(num_bins_);
  begin(raw);
  for (std::uint32_t i = 0; i < dim(); ++i)
    if (x[i] > 0.0f) add(i, raw);
  finish(raw, buckets_out);
}

void DophHash::hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const {
  std::uint32_t* raw = thread_scratch<std::uint32_t, 0>(num_bins_);
  begin(raw);
  for (std::size_t j = 0; j < x.size(); ++j)
    if (x.values[j] > 0.0f) add(x.ids[j], raw);
  finish(raw, buckets_out);
}

}  // namespace glide::hashing
