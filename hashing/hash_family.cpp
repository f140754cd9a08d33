#include "hashing/hash_family.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "common/error.h"
#include "common/rng.h"
#include "hashing/doph_hash.h"
#include "hashing/dwta_hash.h"
#include "hashing/simhash.h"
#include "hashing/wta_hash.h"

namespace glide::hashing {

HashFamily::HashFamily(const HashConfig& config) : config_(config) {
  config_.validate();
  table_salt_.resize(config_.L);
  for (std::uint32_t t = 0; t < config_.L; ++t)
    table_salt_[t] = derive_seed(config_.seed, 1000 + t);
  set_value_bits(32);
}

void HashFamily::set_value_bits(std::uint32_t bits) {
  value_bits_ = bits;
  const std::uint64_t total = std::uint64_t{bits} * config_.K;
  concatenate_ = total <= config_.range_pow;
  range_pow_ = concatenate_ ? static_cast<std::uint32_t>(total) : config_.range_pow;
}

void HashFamily::combine(const std::uint32_t* values, std::uint32_t* buckets_out) const {
  const std::uint32_t K = config_.K;
  if (concatenate_) {
    const std::uint32_t mask = value_bits_ >= 32 ? ~0u : (1u << value_bits_) - 1;
    for (std::uint32_t t = 0; t < config_.L; ++t) {
      std::uint32_t bucket = 0;
      for (std::uint32_t k = 0; k < K; ++k)
        bucket = (bucket << value_bits_) | (values[t * K + k] & mask);
      buckets_out[t] = bucket;
    }
    return;
  }
  // More bits than buckets: mix the K values (with a per-table salt, so tables stay independent)
  // and keep the top range_pow bits.
  for (std::uint32_t t = 0; t < config_.L; ++t) {
    std::uint64_t h = table_salt_[t];
    for (std::uint32_t k = 0; k < K; ++k) h = mix64(h ^ values[t * K + k]);
    buckets_out[t] = static_cast<std::uint32_t>(h >> (64 - range_pow_));
  }
}

void HashFamily::hash_dense_batch(const float* base, std::size_t stride, std::size_t num_rows,
                                  std::uint32_t* buckets_out) const {
  const std::size_t L = config_.L;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, num_rows, 256),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t i = r.begin(); i < r.end(); ++i)
                        hash_dense(base + i * stride, buckets_out + i * L);
                    });
}

std::unique_ptr<HashFamily> make_hash_family(const HashConfig& config) {
  switch (config.kind) {
    case HashKind::kSimHash:
      return std::make_unique<SimHash>(config);
    case HashKind::kWta:
      return std::make_unique<WtaHash>(config);
    case HashKind::kDwta:
      return std::make_unique<DwtaHash>(config);
    case HashKind::kDoph:
      return std::make_unique<DophHash>(config);
  }
  fail("hash config", "unknown hash kind");
}

}  // namespace glide::hashing
