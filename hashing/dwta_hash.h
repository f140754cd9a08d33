// Densified winner-take-all hashing (Chen & Shrivastava 2018, used by SLIDE): WTA over the
// coordinates that are present (nonzero), and a bin with none borrows another bin's value (see
// densify.h). Works for sparse inputs of any width: every coordinate lands in some bin, so a
// sparse input fills about nnz bins and densification fills the rest. hash_dense treats zeros as
// absent, so hash_dense(x) == hash_sparse(nonzeros of x) exactly.
#pragma once
#include <cstdint>

#include "hashing/hash_family.h"
#include "hashing/wta_hash.h"

namespace glide::hashing {

class DwtaHash final : public HashFamily {
 public:
  explicit DwtaHash(const HashConfig& config);
  void hash_dense(const float* x, std::uint32_t* buckets_out) const override;
  void hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const override;
  const WtaBins& bins() const { return bins_; }

 private:
  void densify_and_combine(const std::uint32_t* raw, std::uint32_t* buckets_out) const;

  WtaBins bins_;
  std::uint64_t probe_seed_;
};

}  // namespace glide::hashing
