// AVX2 score kernels; this file alone is compiled with the AVX2 flags. Only called when the CPU
// has AVX2 and FMA.
#include <immintrin.h>

#include <cmath>

#include "engine/score_kernels.h"

namespace glide::engine {

namespace {

// exp(x) for x <= 0, as in score_kernels_avx512.cpp; 2^n is built in the exponent bits (the clamp
// at -86 keeps n >= -124 and the result a normal float).
inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-86.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693147182464599609375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-1.904654299957768e-09f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

float max_exp_sum(const float* z, std::size_t n, float* max) {
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(z + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(z + i + 8));
  }
  float m = hmax(_mm256_max_ps(m0, m1));
  for (; i < n; ++i) m = z[i] > m ? z[i] : m;
  const __m256 shift = _mm256_set1_ps(m);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_add_ps(s0, exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(z + i), shift)));
    s1 = _mm256_add_ps(s1, exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(z + i + 8), shift)));
  }
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += std::exp(z[i] - m);
  *max = m;
  return s;
}

std::size_t find_at_least(const float* z, std::size_t from, std::size_t n, float bound) {
  const __m256 b = _mm256_set1_ps(bound);
  std::size_t i = from;
  for (; i + 8 <= n; i += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(z + i), b, _CMP_GE_OQ));
    if (hit) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(hit)));
  }
  for (; i < n; ++i)
    if (z[i] >= bound) return i;
  return n;
}

}  // namespace

const ScoreKernels& score_avx2_table() {
  static const ScoreKernels k{"avx2", max_exp_sum, find_at_least};
  return k;
}

}  // namespace glide::engine
