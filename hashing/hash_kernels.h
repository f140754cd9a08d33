// The hot loops of hashing: projections (SimHash) and per-bin argmax (WTA/DWTA). Each has a
// portable reference (namespace scalar) and an AVX-512 version (hash_kernels_avx512.cpp, built
// with GLIDE_AVX512_FLAGS); the unqualified entry points pick one from glide::active_isa() on
// every call. Both produce bit-identical results: projections only ever add or subtract inputs
// (coefficients are -1, 0 or +1) in the same order, and argmax is exact.
#pragma once
#include <cstddef>
#include <cstdint>

namespace glide::hashing::kernels {

// A bin with no present coordinate (DWTA: every coordinate of the bin is zero).
inline constexpr std::uint32_t kEmptyBin = 0xFFFFFFFFu;

// Sparse +-1 projection coefficients computed from a hash instead of stored, for inputs too wide
// to keep a coefficient matrix (e.g. 135k input features x 300 bits). Coefficient (feature, bit)
// is nonzero with probability ~1/ratio and then +1 or -1 with equal probability.
struct ProjectionHash {
  std::uint32_t seed = 0;
  std::uint32_t nonzero_below = 0;  // coefficient nonzero iff (h >> 1) < nonzero_below

  static std::uint32_t mix32(std::uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    return h ^ (h >> 16);
  }
  std::uint32_t feature_key(std::uint32_t feature) const {
    return mix32(seed ^ (feature * 0x9E3779B1u));
  }
  static std::uint32_t bit_hash(std::uint32_t key, std::uint32_t bit) {
    return mix32(key + bit * 0x27D4EB2Fu);
  }
  // -1, 0 or +1.
  int coefficient(std::uint32_t feature, std::uint32_t bit) const {
    const std::uint32_t h = bit_hash(feature_key(feature), bit);
    if ((h >> 1) >= nonzero_below) return 0;
    return (h & 1) ? -1 : 1;
  }
};

// out[b] = sum_i x[i] * proj[i*width + b] for b < width. width is a multiple of 16; proj holds
// only -1, 0, +1.
void project_dense(const float* proj, std::size_t width, const float* x, std::size_t dim,
                   float* out);
// out[b] = sum_j values[j] * proj[ids[j]*width + b].
void project_sparse(const float* proj, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t nnz, float* out);
// out[b] = sum_j values[j] * coef(ids[j], b) for b < width, coefficients from `hash`; ids null
// means ids[j] = j (a dense input). Zero values are skipped.
void project_hashed(const ProjectionHash& hash, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t n, float* out);
// For each bin j < num_bins: out[j] = the first p < bin_size with x[positions[j*bin_size + p]]
// maximal. With zeros_absent, zero values are ignored and a bin of zeros gives kEmptyBin.
// Inputs must not contain NaN.
void bin_argmax(const float* x, const std::uint32_t* positions, std::size_t num_bins,
                std::uint32_t bin_size, bool zeros_absent, std::uint32_t* out);

namespace scalar {
void project_dense(const float* proj, std::size_t width, const float* x, std::size_t dim,
                   float* out);
void project_sparse(const float* proj, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t nnz, float* out);
void project_hashed(const ProjectionHash& hash, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t n, float* out);
void bin_argmax(const float* x, const std::uint32_t* positions, std::size_t num_bins,
                std::uint32_t bin_size, bool zeros_absent, std::uint32_t* out);
}  // namespace scalar

namespace avx512 {
void project_dense(const float* proj, std::size_t width, const float* x, std::size_t dim,
                   float* out);
void project_sparse(const float* proj, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t nnz, float* out);
void project_hashed(const ProjectionHash& hash, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t n, float* out);
void bin_argmax(const float* x, const std::uint32_t* positions, std::size_t num_bins,
                std::uint32_t bin_size, bool zeros_absent, std::uint32_t* out);
}  // namespace avx512

}  // namespace glide::hashing::kernels
