// AVX512-VNNI lookup dots (vpdpwssd: 32 int16 x int16 products summed into 16 int32 lanes per
// instruction; the int8 rows are widened with vpmovsxbw on load). This file alone is compiled
// with -mavx512vnni and is only called when the CPU has it. Integer sums: identical to the
// scalar reference.
#include <immintrin.h>

#include "cache/lookup_kernels.h"

namespace glide::cache {

namespace {

void dots_vnni(const std::int8_t* rows, std::size_t count, std::size_t stride,
               const std::int16_t* x, std::size_t n, std::int32_t* out) {
  for (std::size_t r = 0; r < count; ++r) {
    const std::int8_t* a = rows + r * stride;
    __m512i acc = _mm512_setzero_si512();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512i w =
          _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)));
      acc = _mm512_dpwssd_epi32(acc, w, _mm512_loadu_si512(x + i));
    }
    if (i < n) {  // n is a multiple of 16: one half-width step left
      const __m256i w =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
      acc = _mm512_add_epi32(
          acc, _mm512_castsi256_si512(_mm256_dpwssd_epi32(_mm256_setzero_si256(), w, v)));
    }
    out[r] = _mm512_reduce_add_epi32(acc);
  }
}

}  // namespace

const LookupKernels& lookup_vnni_table() {
  static const LookupKernels k{"avx512-vnni", dots_vnni};
  return k;
}

}  // namespace glide::cache
