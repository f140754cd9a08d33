// The interface every LSH family implements, and the factory that makes one from a HashConfig.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "hashing/hash_config.h"

namespace glide::hashing {

// Maps a vector to one bucket id per table. Each family computes K*L hash values (table-major:
// values [t*K, t*K+K) belong to table t) and combine() folds each table's K values into a bucket
// id below 2^range_pow(). Immutable after construction, so one instance serves all threads.
class HashFamily {
 public:
  explicit HashFamily(const HashConfig& config);
  virtual ~HashFamily() = default;
  HashFamily(const HashFamily&) = delete;
  HashFamily& operator=(const HashFamily&) = delete;

  // x has dim() floats; buckets_out receives num_tables() ids.
  virtual void hash_dense(const float* x, std::uint32_t* buckets_out) const = 0;
  // Ids must be below dim() and, for results equal to hash_dense of the same vector, ascending.
  virtual void hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const = 0;
  // Hashes rows base + r*stride for r < num_rows into buckets_out[r*L .. r*L+L), in parallel
  // (oneTBB). Table builds hash every neuron's weight row this way.
  virtual void hash_dense_batch(const float* base, std::size_t stride, std::size_t num_rows,
                                std::uint32_t* buckets_out) const;

  const HashConfig& config() const { return config_; }
  std::uint32_t num_tables() const { return config_.L; }
  std::uint32_t dim() const { return config_.dim; }
  // Bits of a bucket id: the configured range_pow, or fewer when the K values of a table carry
  // fewer bits in all (they are then concatenated, so no bucket is wasted on a hash collision).
  std::uint32_t range_pow() const { return range_pow_; }

 protected:
  // Families call this in their constructor: how many bits one hash value carries.
  void set_value_bits(std::uint32_t bits);
  // values: K*L hash values, table-major -> buckets_out: L bucket ids.
  void combine(const std::uint32_t* values, std::uint32_t* buckets_out) const;

 private:
  HashConfig config_;
  std::uint32_t value_bits_ = 32;
  std::uint32_t range_pow_ = 0;
  bool concatenate_ = false;
  std::vector<std::uint64_t> table_salt_;  // per-table seed of the mixing combine
};

std::unique_ptr<HashFamily> make_hash_family(const HashConfig& config);

// 64-bit finalizer (from SplitMix64) used to mix hash values into bucket ids and probe sequences.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A per-thread buffer of at least n elements. Hashing is on the hot path of every training step,
// so families keep their scratch here instead of allocating per call; contents are garbage.
template <class T, int kTag>
T* thread_scratch(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

}  // namespace glide::hashing
