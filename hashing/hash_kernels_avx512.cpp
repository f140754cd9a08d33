// AVX-512 kernels (this file alone is compiled with GLIDE_AVX512_FLAGS; its table is only used
// from the avx512 level up). Each mirrors its scalar reference in hash_kernels.cpp operation for
// operation, so the results are bit-identical.
// GCC 12 warns about the deliberately undefined source operand inside its own AVX-512 intrinsics
// (GCC bug 105593); nothing in this file is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <limits>

#include "hashing/hash_kernels.h"

namespace glide::hashing::kernels::avx512 {

namespace {

// Accumulates up to kBlocks*16 outputs in registers while streaming rows of the matrix.
template <int kBlocks>
void project_block(const float* proj, std::size_t width, const std::uint32_t* ids,
                   const float* values, std::size_t n, float* out) {
  __m512 acc[kBlocks];
  for (int k = 0; k < kBlocks; ++k) acc[k] = _mm512_setzero_ps();
  for (std::size_t j = 0; j < n; ++j) {
    const __m512 v = _mm512_set1_ps(values[j]);
    const float* row = proj + (ids ? std::size_t{ids[j]} : j) * width;
    // The product v*coef is exact (coef is -1, 0 or +1), so the fused multiply-add rounds
    // exactly like the scalar multiply-then-add.
    for (int k = 0; k < kBlocks; ++k)
      acc[k] = _mm512_fmadd_ps(v, _mm512_loadu_ps(row + 16 * k), acc[k]);
  }
  for (int k = 0; k < kBlocks; ++k) _mm512_storeu_ps(out + 16 * k, acc[k]);
}

void project_rows(const float* proj, std::size_t width, const std::uint32_t* ids,
                  const float* values, std::size_t n, float* out) {
  std::size_t b = 0;
  for (; b + 128 <= width; b += 128) project_block<8>(proj + b, width, ids, values, n, out + b);
  for (; b + 64 <= width; b += 64) project_block<4>(proj + b, width, ids, values, n, out + b);
  for (; b < width; b += 16) project_block<1>(proj + b, width, ids, values, n, out + b);
}

__m512i mix32(__m512i h) {
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(0x85EBCA6Bu)));
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(0xC2B2AE35u)));
  return _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
}

}  // namespace

void project_dense(const float* proj, std::size_t width, const float* x, std::size_t dim,
                   float* out) {
  project_rows(proj, width, nullptr, x, dim, out);
}

void project_sparse(const float* proj, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t nnz, float* out) {
  project_rows(proj, width, ids, values, nnz, out);
}

void project_hashed(const ProjectionHash& hash, std::size_t width, const std::uint32_t* ids,
                    const float* values, std::size_t n, float* out) {
  for (std::size_t b = 0; b < width; b += 16) _mm512_storeu_ps(out + b, _mm512_setzero_ps());
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i bit_mul = _mm512_set1_epi32(static_cast<int>(0x27D4EB2Fu));
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i below = _mm512_set1_epi32(static_cast<int>(hash.nonzero_below));
  for (std::size_t j = 0; j < n; ++j) {
    const float value = values[j];
    if (value == 0.0f) continue;
    const __m512 v = _mm512_set1_ps(value);
    const __m512i key = _mm512_set1_epi32(
        static_cast<int>(hash.feature_key(ids ? ids[j] : static_cast<std::uint32_t>(j))));
    for (std::size_t b = 0; b < width; b += 16) {
      const __m512i bit = _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(b)));
      const __m512i h = mix32(_mm512_add_epi32(key, _mm512_mullo_epi32(bit, bit_mul)));
      const __mmask16 nonzero = _mm512_cmplt_epu32_mask(_mm512_srli_epi32(h, 1), below);
      const __mmask16 negative = _mm512_test_epi32_mask(h, one);
      __m512 acc = _mm512_loadu_ps(out + b);
      acc = _mm512_mask_add_ps(acc, nonzero & static_cast<__mmask16>(~negative), acc, v);
      acc = _mm512_mask_sub_ps(acc, nonzero & negative, acc, v);
      _mm512_storeu_ps(out + b, acc);
    }
  }
}

void bin_argmax(const float* x, const std::uint32_t* positions, std::size_t num_bins,
                std::uint32_t bin_size, bool zeros_absent, std::uint32_t* out) {
  if (bin_size != 8 && bin_size != 16)
    return scalar::bin_argmax(x, positions, num_bins, bin_size, zeros_absent, out);
  const __m512 minus_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512 zero = _mm512_setzero_ps();
  const std::size_t total = num_bins * bin_size;
  const std::uint32_t group_mask = bin_size == 8 ? 0xFFu : 0xFFFFu;
  for (std::size_t start = 0; start < total; start += 16) {
    const std::size_t left = total - start;
    const __mmask16 valid = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
    const __m512i idx = _mm512_maskz_loadu_epi32(valid, positions + start);
    __m512 v = _mm512_mask_i32gather_ps(minus_inf, valid, idx, x, 4);
    if (zeros_absent) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ), minus_inf);
    // Maximum of each group of bin_size lanes, broadcast to the whole group.
    __m512 m = _mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
    m = _mm512_max_ps(m, _mm512_permute_ps(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    if (bin_size == 16) m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    const std::uint32_t is_max = _mm512_cmp_ps_mask(v, m, _CMP_EQ_OQ);
    const std::uint32_t all_absent = _mm512_cmp_ps_mask(m, minus_inf, _CMP_EQ_OQ);
    for (std::uint32_t lane0 = 0; lane0 < 16 && start + lane0 < total; lane0 += bin_size) {
      const std::size_t bin = (start + lane0) / bin_size;
      const std::uint32_t group = (is_max >> lane0) & group_mask;
      if (zeros_absent && ((all_absent >> lane0) & 1u))
        out[bin] = kEmptyBin;
      else
        out[bin] = group ? static_cast<std::uint32_t>(__builtin_ctz(group)) : 0;  // 0: NaN only
    }
  }
}

}  // namespace glide::hashing::kernels::avx512

namespace glide::hashing::kernels {

const HashKernels& hash_avx512_table() {
  static const HashKernels k{"avx512", avx512::project_dense, avx512::project_sparse,
                             avx512::project_hashed, avx512::bin_argmax};
  return k;
}

}  // namespace glide::hashing::kernels
