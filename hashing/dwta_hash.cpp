#include "hashing/dwta_hash.h"

#include <limits>

#include "common/rng.h"
#include "hashing/densify.h"
#include "hashing/hash_kernels.h"

namespace glide::hashing {

DwtaHash::DwtaHash(const HashConfig& config)
    : HashFamily(config),
      bins_(config, derive_seed(config.seed, 3)),
      probe_seed_(derive_seed(config.seed, 4)) {
  set_value_bits(bins_.value_bits());
}

void DwtaHash::hash_dense(const float* x, std::uint32_t* buckets_out) const {
  std::uint32_t* raw = thread_scratch<std::uint32_t, 0>(bins_.num_bins);
  kernels::bin_argmax(x, bins_.positions.data(), bins_.num_bins, bins_.width, true, raw);
  densify_and_combine(raw, buckets_out);
}

void DwtaHash::hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const {
  const std::uint32_t n = bins_.num_bins;
  std::uint32_t* raw = thread_scratch<std::uint32_t, 0>(n);
  float* best = thread_scratch<float, 1>(n);
  for (std::uint32_t b = 0; b < n; ++b) {
    raw[b] = kernels::kEmptyBin;
    best[b] = -std::numeric_limits<float>::infinity();
  }
  for (std::size_t j = 0; j < x.size(); ++j) {
    const float v = x.values[j];
    if (v == 0.0f) continue;
    for (std::uint32_t p = 0; p < bins_.num_perms; ++p) {
      const std::uint32_t slot = bins_.slot_of[std::size_t{p} * bins_.dim + x.ids[j]];
      if (slot == WtaBins::kNoSlot) continue;
      const std::uint32_t bin = slot / bins_.width, offset = slot % bins_.width;
      // Ties go to the smaller offset, as in the dense argmax.
      if (v > best[bin] || (v == best[bin] && offset < raw[bin])) {
        best[bin] = v;
        raw[bin] = offset;
      }
    }
  }
  densify_and_combine(raw, buckets_out);
}

void DwtaHash::densify_and_combine(const std::uint32_t* raw, std::uint32_t* buckets_out) const {
  std::uint32_t* values = thread_scratch<std::uint32_t, 2>(bins_.num_bins);
  densify(raw, values, bins_.num_bins, kernels::kEmptyBin, probe_seed_);
  combine(values, buckets_out);
}

}  // namespace glide::hashing
