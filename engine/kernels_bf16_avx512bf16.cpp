// The AVX-512 bf16 kernels with vdpbf16ps (AVX512_BF16: 32 bf16 x bf16 products summed pairwise
// into 16 fp32 lanes per instruction) for bf16 x bf16 dot products. This file alone is compiled
// with -mavx512bf16; it is only called when the CPU has the feature.
#include "engine/kernels_bf16_simd.h"

namespace glide::engine {

namespace {

inline __mmask32 mask32(std::size_t rem) {
  return rem >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << rem) - 1);
}
inline __m512bh ldbh(const bf16* p, __mmask32 m) {
  return (__m512bh)_mm512_maskz_loadu_epi16(m, p);
}

void dot_rows_dp(const bf16* w, const bf16* X, std::size_t stride, const std::uint32_t* rows,
                 std::size_t count, std::size_t dim, float* out) {
  std::size_t k = 0;
  for (; k + 4 <= count; k += 4) {
    const bf16* r0 = X + rows[k] * stride;
    const bf16* r1 = X + rows[k + 1] * stride;
    const bf16* r2 = X + rows[k + 2] * stride;
    const bf16* r3 = X + rows[k + 3] * stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i < dim; i += 32) {
      const __mmask32 m = mask32(dim - i);
      const __m512bh wv = ldbh(w + i, m);
      a0 = _mm512_dpbf16_ps(a0, wv, ldbh(r0 + i, m));
      a1 = _mm512_dpbf16_ps(a1, wv, ldbh(r1 + i, m));
      a2 = _mm512_dpbf16_ps(a2, wv, ldbh(r2 + i, m));
      a3 = _mm512_dpbf16_ps(a3, wv, ldbh(r3 + i, m));
    }
    out[k] = _mm512_reduce_add_ps(a0);
    out[k + 1] = _mm512_reduce_add_ps(a1);
    out[k + 2] = _mm512_reduce_add_ps(a2);
    out[k + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; k < count; ++k) {
    const bf16* r = X + rows[k] * stride;
    __m512 a = _mm512_setzero_ps();
    for (std::size_t i = 0; i < dim; i += 32) {
      const __mmask32 m = mask32(dim - i);
      a = _mm512_dpbf16_ps(a, ldbh(w + i, m), ldbh(r + i, m));
    }
    out[k] = _mm512_reduce_add_ps(a);
  }
}

}  // namespace

const Bf16Kernels& bf16_avx512bf16_table() {
  static const Bf16Kernels k = [] {
    Bf16Kernels t = avx512_table("avx512-bf16");
    t.dot_rows_bb = dot_rows_dp;
    return t;
  }();
  return k;
}

}  // namespace glide::engine
