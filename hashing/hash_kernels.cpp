// Scalar reference kernels and the family's tables by level. The scalar loops keep the exact
// operation order of the AVX-512 ones (per output lane, inputs in ascending order) so results are
// equal.
#include "hashing/hash_kernels.h"

#include <limits>

namespace glide::hashing::kernels {

namespace scalar {

void project_dense(const float* proj, std::size_t width, const float* x, std::size_t dim,
                   float* out) {
  for (std::size_t b = 0; b < width; ++b) out[b] = 0.0f;
  for (std::size_t i = 0; i < dim; ++i) {
    const float xi = x[i];
    const float* row = proj + i * width;
    for (std::size_t b = 0; b < width; ++b) out[b] += xi * row[b];
  }
}

void project_sparse(const float* proj, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t nnz, float* out) {
  for (std::size_t b = 0; b < width; ++b) out[b] = 0.0f;
  for (std::size_t j = 0; j < nnz; ++j) {
    const float v = values[j];
    const float* row = proj + std::size_t{ids[j]} * width;
    for (std::size_t b = 0; b < width; ++b) out[b] += v * row[b];
  }
}

void project_hashed(const ProjectionHash& hash, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t n, float* out) {
  for (std::size_t b = 0; b < width; ++b) out[b] = 0.0f;
  for (std::size_t j = 0; j < n; ++j) {
    const float v = values[j];
    if (v == 0.0f) continue;
    const std::uint32_t key = hash.feature_key(ids ? ids[j] : static_cast<std::uint32_t>(j));
    for (std::size_t b = 0; b < width; ++b) {
      const std::uint32_t h = ProjectionHash::bit_hash(key, static_cast<std::uint32_t>(b));
      if ((h >> 1) >= hash.nonzero_below) continue;
      if (h & 1)
        out[b] -= v;
      else
        out[b] += v;
    }
  }
}

void bin_argmax(const float* x, const std::uint32_t* positions, std::size_t num_bins,
                std::uint32_t bin_size, bool zeros_absent, std::uint32_t* out) {
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < num_bins; ++j) {
    const std::uint32_t* pos = positions + j * bin_size;
    if (zeros_absent) {
      float best = kMinusInf;
      std::uint32_t arg = kEmptyBin;
      for (std::uint32_t p = 0; p < bin_size; ++p) {
        const float v = x[pos[p]];
        if (v != 0.0f && v > best) best = v, arg = p;
      }
      out[j] = arg;
    } else {
      float best = x[pos[0]];
      std::uint32_t arg = 0;
      for (std::uint32_t p = 1; p < bin_size; ++p) {
        const float v = x[pos[p]];
        if (v > best) best = v, arg = p;
      }
      out[j] = arg;
    }
  }
}

}  // namespace scalar

const HashKernels& hash_avx512_table();  // hash_kernels_avx512.cpp

const HashKernels& hash_scalar_kernels() {
  static const HashKernels k{"scalar", scalar::project_dense, scalar::project_sparse,
                             scalar::project_hashed, scalar::bin_argmax};
  return k;
}

const KernelDispatch<HashKernels>& hash_kernel_dispatch() {
  static const KernelDispatch<HashKernels> dispatch{
      {Isa::kScalar, [] { return &hash_scalar_kernels(); }},
      {Isa::kAvx512, [] { return &hash_avx512_table(); }},
  };
  return dispatch;
}

}  // namespace glide::hashing::kernels
