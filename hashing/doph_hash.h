// Densified one-permutation minhash (Shrivastava & Li 2014, densified per Shrivastava 2017) of the
// set {i : x_i > 0}: one random permutation of the coordinates is cut into K*L contiguous bins,
// each hash value is the smallest permuted position of the set within its bin, and empty bins
// borrow from others. Two sets agree on a value with probability ~ their Jaccard similarity.
// Meant for sparse binary inputs; dense inputs are binarized by x_i > 0 (e.g. ReLU outputs).
#pragma once
#include <cstdint>
#include <vector>

#include "hashing/hash_family.h"

namespace glide::hashing {

class DophHash final : public HashFamily {
 public:
  explicit DophHash(const HashConfig& config);
  void hash_dense(const float* x, std::uint32_t* buckets_out) const override;
  void hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const override;

 private:
  // raw[b] = min permuted position in bin b, or kEmpty.
  void begin(std::uint32_t* raw) const;
  void add(std::uint32_t coordinate, std::uint32_t* raw) const {
    const std::uint32_t pos = permutation_[coordinate];
    const auto bin = static_cast<std::uint32_t>((std::uint64_t{pos} * num_bins_) / dim());
    if (pos < raw[bin]) raw[bin] = pos;
  }
  void finish(const std::uint32_t* raw, std::uint32_t* buckets_out) const;

  std::uint32_t num_bins_;
  std::vector<std::uint32_t> permutation_;  // coordinate -> position
  std::uint64_t probe_seed_;
};

}  // namespace glide::hashing
