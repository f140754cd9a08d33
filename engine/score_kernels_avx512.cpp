// AVX-512 score kernels; this file alone is compiled with the AVX-512 flags. Only called when the
// CPU has AVX-512 F, BW, DQ and VL.
#include <immintrin.h>

#include <cmath>

#include "engine/score_kernels.h"

namespace glide::engine {

namespace {

// exp(x) for x <= 0. x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so r carries no error
// from it), e^r by its Taylor polynomial to degree 7 (truncation below 6e-9 relative), scaled by
// 2^n. x is clamped at -86 so that every result is a normal float (a denormal would cost a
// microcode assist): exp(-86) = 4.5e-38 added to a sum that is at least 1 (the maximum's own
// term) changes no bit of it.
inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-86.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147182464599609375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-1.904654299957768e-09f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

inline __mmask16 tail_mask(std::size_t rem) {
  return rem >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << rem) - 1);
}

float max_exp_sum(const float* z, std::size_t n, float* max) {
  const __m512 lowest = _mm512_set1_ps(-INFINITY);
  __m512 m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(z + i));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(z + i + 16));
    m2 = _mm512_max_ps(m2, _mm512_loadu_ps(z + i + 32));
    m3 = _mm512_max_ps(m3, _mm512_loadu_ps(z + i + 48));
  }
  for (; i < n; i += 16)
    m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(lowest, tail_mask(n - i), z + i));
  const float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
  const __m512 shift = _mm512_set1_ps(m);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_add_ps(s0, exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(z + i), shift)));
    s1 = _mm512_add_ps(s1, exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(z + i + 16), shift)));
  }
  for (; i < n; i += 16) {
    const __mmask16 t = tail_mask(n - i);
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, z + i), shift));
    s0 = _mm512_mask_add_ps(s0, t, s0, e);
  }
  *max = m;
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

std::size_t find_at_least(const float* z, std::size_t from, std::size_t n, float bound) {
  const __m512 b = _mm512_set1_ps(bound);
  for (std::size_t i = from; i < n; i += 16) {
    const __mmask16 t = tail_mask(n - i);
    const unsigned hit = _mm512_mask_cmp_ps_mask(t, _mm512_maskz_loadu_ps(t, z + i), b, _CMP_GE_OQ);
    if (hit) return i + static_cast<std::size_t>(__builtin_ctz(hit));
  }
  return n;
}

}  // namespace

const ScoreKernels& score_avx512_table() {
  static const ScoreKernels k{"avx512", max_exp_sum, find_at_least};
  return k;
}

}  // namespace glide::engine
