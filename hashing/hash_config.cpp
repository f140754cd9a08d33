#include "hashing/hash_config.h"

#include "common/error.h"

namespace glide::hashing {

HashKind parse_hash_kind(std::string_view name) {
  if (name == "simhash") return HashKind::kSimHash;
  if (name == "wta") return HashKind::kWta;
  if (name == "dwta") return HashKind::kDwta;
  if (name == "doph") return HashKind::kDoph;
  fail("hash kind", "unknown hash kind '" + std::string(name) + "' (simhash|wta|dwta|doph)");
}

const char* hash_kind_name(HashKind kind) {
  switch (kind) {
    case HashKind::kSimHash:
      return "simhash";
    case HashKind::kWta:
      return "wta";
    case HashKind::kDwta:
      return "dwta";
    case HashKind::kDoph:
      return "doph";
  }
  return "?";
}

bool uses_sparse_ratio(HashKind kind) {
  return kind == HashKind::kSimHash;
}
bool uses_bin_size(HashKind kind) {
  return kind == HashKind::kWta || kind == HashKind::kDwta;
}

namespace {
bool within(std::uint32_t v, Bounds b) {
  return v >= b.min && v <= b.max;
}
std::string text(Bounds b) {  // "[1, 30]"
  std::string s = std::to_string(b.min);
  s.insert(0, 1, '[');
  return s + ", " + std::to_string(b.max) + "]";
}
}  // namespace

void HashConfig::validate() const {
  const std::string where = "hash config";
  if (dim == 0) fail(where, "dim must be positive");
  if (K == 0 || L == 0) fail(where, "K and L must be positive");
  // K*L hash values are computed per input; beyond 2^20 a single query would cost milliseconds.
  if (std::uint64_t{K} * L > (1u << 20)) fail(where, "K*L must be at most 2^20");
  if (!within(range_pow, kRangePowBounds))
    fail(where, "range_pow must be in " + text(kRangePowBounds));
  if (uses_sparse_ratio(kind) && !within(sparse_ratio, kSparseRatioBounds))
    fail(where, "sparse_ratio must be in " + text(kSparseRatioBounds));
  if (uses_bin_size(kind) && !within(bin_size, kBinSizeBounds))
    fail(where, "bin_size must be in " + text(kBinSizeBounds));
}

std::string HashConfig::to_string() const {
  std::string s = std::string(hash_kind_name(kind)) + " dim=" + std::to_string(dim) +
                  " K=" + std::to_string(K) + " L=" + std::to_string(L) +
                  " range_pow=" + std::to_string(range_pow);
  if (uses_sparse_ratio(kind)) s += " sparse_ratio=" + std::to_string(sparse_ratio);
  if (uses_bin_size(kind)) s += " bin_size=" + std::to_string(bin_size);
  return s + " seed=" + std::to_string(seed);
}

}  // namespace glide::hashing
