// The hot loops of hashing: projections (SimHash) and per-bin argmax (WTA/DWTA). A table per
// level: the portable reference (namespace scalar) and AVX-512 (hash_kernels_avx512.cpp, built
// with GLIDE_AVX512_FLAGS; used from the avx512 level up). The unqualified entry points call the
// active level's table (common/simd_dispatch.h). Both produce bit-identical results: projections
// only ever add or subtract inputs (coefficients are -1, 0 or +1) in the same order, and argmax
// is exact.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/simd_dispatch.h"

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

// The family's table: what each entry computes is documented at the entry points below.
struct HashKernels {
  const char* name;  // "scalar" or "avx512"
  void (*project_dense)(const float* proj, std::size_t width, const float* x, std::size_t dim,
                        float* out);
  void (*project_sparse)(const float* proj, std::size_t width, const std::uint32_t* ids,
                         const float* values, std::size_t nnz, float* out);
  void (*project_hashed)(const ProjectionHash& hash, std::size_t width, const std::uint32_t* ids,
                         const float* values, std::size_t n, float* out);
  void (*bin_argmax)(const float* x, const std::uint32_t* positions, std::size_t num_bins,
                     std::uint32_t bin_size, bool zeros_absent, std::uint32_t* out);
};

// The hash family's tables by level: scalar, and avx512 from the avx512 level up.
const KernelDispatch<HashKernels>& hash_kernel_dispatch();
// The active level's table (glide::active_isa()).
inline const HashKernels& hash_kernels() {
  return hash_kernel_dispatch().active();
}
const HashKernels& hash_scalar_kernels();

// The entry points: the active level's kernels.
// out[b] = sum_i x[i] * proj[i*width + b] for b < width. width is a multiple of 16; proj holds
// only -1, 0, +1.
inline void project_dense(const float* proj, std::size_t width, const float* x, std::size_t dim,
                          float* out) {
  hash_kernels().project_dense(proj, width, x, dim, out);
}
// out[b] = sum_j values[j] * proj[ids[j]*width + b].
inline void project_sparse(const float* proj, std::size_t width, const std::uint32_t* ids,
                           const float* values, std::size_t nnz, float* out) {
  hash_kernels().project_sparse(proj, width, ids, values, nnz, out);
}
// out[b] = sum_j values[j] * coef(ids[j], b) for b < width, coefficients from `hash`; ids null
// means ids[j] = j (a dense input). Zero values are skipped.
inline void project_hashed(const ProjectionHash& hash, std::size_t width, const std::uint32_t* ids,
                           const float* values, std::size_t n, float* out) {
  hash_kernels().project_hashed(hash, width, ids, values, n, out);
}
// For each bin j < num_bins: out[j] = the first p < bin_size with x[positions[j*bin_size + p]]
// maximal. With zeros_absent, zero values are ignored and a bin of zeros gives kEmptyBin.
// Inputs must not contain NaN.
inline void bin_argmax(const float* x, const std::uint32_t* positions, std::size_t num_bins,
                       std::uint32_t bin_size, bool zeros_absent, std::uint32_t* out) {
  hash_kernels().bin_argmax(x, positions, num_bins, bin_size, zeros_absent, out);
}

// The reference kernels (the scalar table's entries), also used by the AVX-512 ones for shapes
// they do not vectorize.
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

}  // namespace glide::hashing::kernels
