// What a hash family is: its kind and sizes. Shared by every family, the factory and the CLI.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace glide::hashing {

enum class HashKind {
  kSimHash,  // signed random projections with sparse +-1 projection vectors (angular similarity)
  kWta,      // winner-take-all over bins of a random permutation (rank order similarity)
  kDwta,     // densified WTA: zeros count as absent, empty bins borrow from other bins
  kDoph,     // densified one-permutation minhash of the set {i : x_i > 0} (Jaccard similarity)
};

// "simhash" | "wta" | "dwta" | "doph". parse throws glide::Error naming the accepted values.
HashKind parse_hash_kind(std::string_view name);
const char* hash_kind_name(HashKind kind);

// Which settings a family reads: SimHash its sparse_ratio, WTA and DWTA their bin_size.
bool uses_sparse_ratio(HashKind kind);
bool uses_bin_size(HashKind kind);

// The ranges HashConfig::validate accepts. engine's LSH config checks the same fields against
// these same bounds (engine/config_fields.h), so a network config that validates also builds.
struct Bounds {
  std::uint32_t min, max;
};
inline constexpr Bounds kRangePowBounds{1, 30};  // BucketTables holds at most 2^30 per table
inline constexpr Bounds kSparseRatioBounds{1, 1024};
inline constexpr Bounds kBinSizeBounds{2, 4096};

struct HashConfig {
  HashKind kind = HashKind::kDwta;
  std::uint32_t dim = 0;  // length of dense inputs; sparse input ids must be below it
  std::uint32_t K = 6;    // hash values per table, concatenated or mixed into a bucket id
  std::uint32_t L = 50;   // number of tables
  // At most 2^range_pow buckets per table (fewer when the K values carry fewer bits in all:
  // SimHash with K=6 has 2^6). 15 gives 670k neurons ~20 per bucket, and 50 tables of 2^15
  // buckets x 32 ids take 216 MB (BucketTables::memory_bytes_for).
  std::uint32_t range_pow = 15;
  std::uint32_t sparse_ratio = 3;  // SimHash: each projection coefficient is nonzero w.p. 1/ratio
  std::uint32_t bin_size = 8;      // WTA/DWTA: coordinates per bin (at least dim/(K*L) for DWTA)
  std::uint64_t seed = 1;

  // Throws glide::Error when a field is out of range (dim 0, K*L too large, range_pow > 30...).
  void validate() const;
  // "dwta dim=128 K=6 L=50 range_pow=16 bin_size=8 seed=1" (the fields the kind uses).
  std::string to_string() const;
};

}  // namespace glide::hashing
