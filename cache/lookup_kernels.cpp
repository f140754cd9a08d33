// The scalar and SSE2 lookup dots and the family's tables by level (lookup_kernels.h).
#include "cache/lookup_kernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace glide::cache {

#if defined(__x86_64__)
const LookupKernels& lookup_vnni_table();  // lookup_kernels_vnni.cpp
#endif

namespace {

void dots_scalar(const std::int8_t* rows, std::size_t count, std::size_t stride,
                 const std::int16_t* x, std::size_t n, std::int32_t* out) {
  for (std::size_t r = 0; r < count; ++r) {
    const std::int8_t* a = rows + r * stride;
    std::int32_t s = 0;
    for (std::size_t i = 0; i < n; ++i) s += std::int32_t(a[i]) * x[i];
    out[r] = s;
  }
}

#if defined(__SSE2__)
// 16 weights widened to int16 (sign from a compare), then 8 products per pmaddwd.
void dots_sse2(const std::int8_t* rows, std::size_t count, std::size_t stride,
               const std::int16_t* x, std::size_t n, std::int32_t* out) {
  for (std::size_t r = 0; r < count; ++r) {
    const std::int8_t* a = rows + r * stride;
    __m128i acc = _mm_setzero_si128();
    for (std::size_t i = 0; i < n; i += 16) {
      const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
      const __m128i sign = _mm_cmpgt_epi8(_mm_setzero_si128(), w);
      const __m128i lo = _mm_unpacklo_epi8(w, sign), hi = _mm_unpackhi_epi8(w, sign);
      acc = _mm_add_epi32(
          acc, _mm_madd_epi16(lo, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
      acc = _mm_add_epi32(
          acc, _mm_madd_epi16(hi, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8))));
    }
    alignas(16) std::int32_t lanes[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(lanes), acc);
    out[r] = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  }
}
#endif

}  // namespace

const LookupKernels& lookup_scalar_kernels() {
  static const LookupKernels k{"scalar", dots_scalar};
  return k;
}

namespace {

const LookupKernels& lookup_sse2_kernels() {
#if defined(__SSE2__)
  static const LookupKernels k{"sse2", dots_sse2};
  return k;
#else
  return lookup_scalar_kernels();
#endif
}

}  // namespace

const KernelDispatch<LookupKernels>& lookup_kernel_dispatch() {
  static const KernelDispatch<LookupKernels> dispatch{
      {Isa::kScalar, [] { return &lookup_scalar_kernels(); }},
      {Isa::kAvx2, [] { return &lookup_sse2_kernels(); }},
#if defined(__x86_64__)
      {Isa::kAvx512Vnni, [] { return &lookup_vnni_table(); }},
#endif
  };
  return dispatch;
}

const LookupKernels& lookup_kernels() {
  return lookup_kernel_dispatch().active();
}

}  // namespace glide::cache
