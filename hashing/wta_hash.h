// Winner-take-all hashing (Yagnik et al. 2011): the K*L hash values of x are, for each bin of
// `bin_width` coordinates drawn by a random permutation, the position of the largest coordinate
// in the bin. Depends only on the rank order of coordinates, so it suits dense activations.
#pragma once
#include <cstdint>
#include <vector>

#include "common/aligned.h"
#include "hashing/hash_family.h"

namespace glide::hashing {

// Which input coordinates fall in which bin, shared by WTA and DWTA. Slot s (bin s / width,
// offset s % width) holds coordinate sequence[s], where the sequence concatenates independent
// random permutations of [0, dim) until every one of the K*L bins is full.
struct WtaBins {
  WtaBins(const HashConfig& config, std::uint64_t seed);

  std::uint32_t num_bins = 0;   // K*L
  std::uint32_t width = 0;      // max(bin_size, ceil(dim / num_bins)): every coordinate is used
  std::uint32_t num_perms = 0;  // permutations needed to fill num_bins * width slots
  std::uint32_t dim = 0;
  AlignedArray<std::uint32_t> positions;  // num_bins * width coordinates, bin-major
  // For coordinate i and permutation p: its slot, or kNoSlot past the last bin (sparse inputs).
  std::vector<std::uint32_t> slot_of;  // num_perms * dim
  static constexpr std::uint32_t kNoSlot = 0xFFFFFFFFu;

  // Bits that hold an offset below width.
  std::uint32_t value_bits() const;
};

class WtaHash final : public HashFamily {
 public:
  explicit WtaHash(const HashConfig& config);
  void hash_dense(const float* x, std::uint32_t* buckets_out) const override;
  // Hashes the dense vector with zeros at the missing ids: O(dim) per call, so prefer DWTA for
  // wide sparse inputs.
  void hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const override;
  const WtaBins& bins() const { return bins_; }

 private:
  WtaBins bins_;
};

}  // namespace glide::hashing
