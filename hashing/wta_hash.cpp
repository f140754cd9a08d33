#include "hashing/wta_hash.h"

#include <algorithm>
#include <numeric>

#include "common/rng.h"
#include "hashing/hash_kernels.h"

namespace glide::hashing {

WtaBins::WtaBins(const HashConfig& config, std::uint64_t seed) : dim(config.dim) {
  num_bins = config.K * config.L;
  width = std::max(config.bin_size, (config.dim + num_bins - 1) / num_bins);
  const std::uint64_t slots = std::uint64_t{num_bins} * width;
  num_perms = static_cast<std::uint32_t>((slots + dim - 1) / dim);
  positions = AlignedArray<std::uint32_t>(slots);
  slot_of.assign(std::size_t{num_perms} * dim, kNoSlot);
  Rng rng(seed);
  std::vector<std::uint32_t> perm(dim);
  for (std::uint32_t p = 0; p < num_perms; ++p) {
    std::iota(perm.begin(), perm.end(), 0u);
    // Fisher-Yates with our own generator: std::shuffle's algorithm is implementation-defined.
    for (std::uint32_t i = dim - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
    for (std::uint32_t j = 0; j < dim; ++j) {
      const std::uint64_t slot = std::uint64_t{p} * dim + j;
      if (slot >= slots) break;
      positions[slot] = perm[j];
      slot_of[std::size_t{p} * dim + perm[j]] = static_cast<std::uint32_t>(slot);
    }
  }
}

std::uint32_t WtaBins::value_bits() const {
  std::uint32_t bits = 1;
  while ((1ull << bits) < width) ++bits;
  return bits;
}

WtaHash::WtaHash(const HashConfig& config)
    : HashFamily(config), bins_(config, derive_seed(config.seed, 2)) {
  set_value_bits(bins_.value_bits());
}

void WtaHash::hash_dense(const float* x, std::uint32_t* buckets_out) const {
  std::uint32_t* values = thread_scratch<std::uint32_t, 0>(bins_.num_bins);
  kernels::bin_argmax(x, bins_.positions.data(), bins_.num_bins, bins_.width, false, values);
  combine(values, buckets_out);
}

void WtaHash::hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const {
  // Zeroed once per thread and restored after each call, so a call costs O(nnz) plus the bins.
  thread_local std::vector<float> dense;
  if (dense.size() < dim()) dense.assign(dim(), 0.0f);
  for (std::size_t j = 0; j < x.size(); ++j) dense[x.ids[j]] = x.values[j];
  hash_dense(dense.data(), buckets_out);
  for (std::size_t j = 0; j < x.size(); ++j) dense[x.ids[j]] = 0.0f;
}

}  // namespace glide::hashing
