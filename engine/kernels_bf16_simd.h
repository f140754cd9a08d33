// The AVX-512 bf16 kernels (bf16 expanded to fp32 by a 16-bit shift, fp32 FMA), included by
// kernels_bf16_avx512.cpp and kernels_bf16_avx512bf16.cpp, each compiled with its ISA's flags
// and -ffp-contract=off. Everything here has internal linkage. Tails use masked loads and stores.
#pragma once
#include <immintrin.h>

#include "engine/kernels_bf16.h"

namespace glide::engine {
namespace {

inline __mmask16 mask16(std::size_t rem) {
  return rem >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << rem) - 1);
}
inline __m512i set1(std::uint32_t x) {
  return _mm512_set1_epi32(static_cast<int>(x));
}
inline __m512 ld16(const float* p, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, p);
}
inline __m512 ld16(const bf16* p, __mmask16 m) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

// Round to nearest even, NaN kept quiet (as f32_to_bf16).
inline __m256i rne16(__m512 x) {
  const __m512i b = _mm512_castps_si512(x);
  const __m512i hi = _mm512_srli_epi32(b, 16);
  const __m512i lsb = _mm512_and_si512(hi, set1(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(lsb, set1(0x7FFF))), 16);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, set1(0x7FFFFFFF)), set1(0x7F800000));
  r = _mm512_mask_or_epi32(r, nan, hi, set1(0x40));
  return _mm512_cvtepi32_epi16(r);
}

// sr_noise(seed, i0 + lane) for 16 lanes: the Weyl step seed + i G as (seed + i0 G) + lane G.
inline __m512i noise16(std::uint32_t seed, std::size_t i0) {
  const std::uint32_t G = 0x9E3779B9u;
  const __m512i lanes = _mm512_setr_epi32(
      0, static_cast<int>(G), static_cast<int>(2 * G), static_cast<int>(3 * G),
      static_cast<int>(4 * G), static_cast<int>(5 * G), static_cast<int>(6 * G),
      static_cast<int>(7 * G), static_cast<int>(8 * G), static_cast<int>(9 * G),
      static_cast<int>(10 * G), static_cast<int>(11 * G), static_cast<int>(12 * G),
      static_cast<int>(13 * G), static_cast<int>(14 * G), static_cast<int>(15 * G));
  __m512i x = _mm512_add_epi32(set1(seed + static_cast<std::uint32_t>(i0) * G), lanes);
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  x = _mm512_mullo_epi32(x, set1(0x21F0AAADu));
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
  x = _mm512_mullo_epi32(x, set1(0x735A2D97u));
  return _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
}

// Stochastic rounding (as f32_to_bf16_sr).
inline __m256i sr16(__m512 x, __m512i noise) {
  const __m512i b = _mm512_castps_si512(x);
  const __m512i hi = _mm512_srli_epi32(b, 16);
  const __m512i mag = _mm512_and_si512(b, set1(0x7FFFFFFF));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_and_si512(noise, set1(0xFFFF))), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmpge_epu32_mask(mag, set1(0x7F800000)), hi);
  r = _mm512_mask_or_epi32(r, _mm512_cmpgt_epu32_mask(mag, set1(0x7F800000)), r, set1(0x40));
  return _mm512_cvtepi32_epi16(r);
}

void to_bf16(const float* x, bf16* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    _mm256_mask_storeu_epi16(out + i, m, rne16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void to_bf16_sr(const float* x, bf16* out, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    _mm256_mask_storeu_epi16(out + i, m, sr16(_mm512_maskz_loadu_ps(m, x + i), noise16(seed, i)));
  }
}

void to_f32(const bf16* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    _mm512_mask_storeu_ps(out + i, m, ld16(x + i, m));
  }
}

float dot_f32(const bf16* w, const float* x, std::size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(ld16(w + i, 0xFFFF), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(ld16(w + i + 16, 0xFFFF), _mm512_loadu_ps(x + i + 16), a1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    a0 = _mm512_fmadd_ps(ld16(w + i, m), ld16(x + i, m), a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// Four activation rows at a time: the weight row is expanded once per four dot products.
template <class WT, class XT>
void dot_rows(const WT* w, const XT* X, std::size_t stride, const std::uint32_t* rows,
              std::size_t count, std::size_t dim, float* out) {
  std::size_t k = 0;
  for (; k + 4 <= count; k += 4) {
    const XT* r0 = X + rows[k] * stride;
    const XT* r1 = X + rows[k + 1] * stride;
    const XT* r2 = X + rows[k + 2] * stride;
    const XT* r3 = X + rows[k + 3] * stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i < dim; i += 16) {
      const __mmask16 m = mask16(dim - i);
      const __m512 wv = ld16(w + i, m);
      a0 = _mm512_fmadd_ps(wv, ld16(r0 + i, m), a0);
      a1 = _mm512_fmadd_ps(wv, ld16(r1 + i, m), a1);
      a2 = _mm512_fmadd_ps(wv, ld16(r2 + i, m), a2);
      a3 = _mm512_fmadd_ps(wv, ld16(r3 + i, m), a3);
    }
    out[k] = _mm512_reduce_add_ps(a0);
    out[k + 1] = _mm512_reduce_add_ps(a1);
    out[k + 2] = _mm512_reduce_add_ps(a2);
    out[k + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; k < count; ++k) {
    const XT* r = X + rows[k] * stride;
    __m512 a = _mm512_setzero_ps();
    for (std::size_t i = 0; i < dim; i += 16) {
      const __mmask16 m = mask16(dim - i);
      a = _mm512_fmadd_ps(ld16(w + i, m), ld16(r + i, m), a);
    }
    out[k] = _mm512_reduce_add_ps(a);
  }
}

// Up to 128 columns: the weights and their gradient stay in registers while each activating
// row is read once for the gradient and its dX row updated once.
template <class WT>
void backward_block(const WT* w, const bf16* X, std::size_t xs, float* dX, std::size_t dxs,
                    const std::uint32_t* rows, const float* coef, std::size_t count,
                    std::size_t len, float* gw) {
  constexpr std::size_t V = 8;
  __m512 wv[V], acc[V];
  __mmask16 mk[V];
  for (std::size_t v = 0; v < V; ++v) {
    mk[v] = mask16(len > v * 16 ? len - v * 16 : 0);
    wv[v] = ld16(w + v * 16, mk[v]);
    acc[v] = _mm512_setzero_ps();
  }
  for (std::size_t k = 0; k < count; ++k) {
    const __m512 c = _mm512_set1_ps(coef[k]);
    const bf16* x = X + rows[k] * xs;
    float* dx = dX + rows[k] * dxs;
    for (std::size_t v = 0; v < V; ++v) {
      acc[v] = _mm512_fmadd_ps(c, ld16(x + v * 16, mk[v]), acc[v]);
      _mm512_mask_storeu_ps(dx + v * 16, mk[v],
                            _mm512_fmadd_ps(c, wv[v], _mm512_maskz_loadu_ps(mk[v], dx + v * 16)));
    }
  }
  for (std::size_t v = 0; v < V; ++v) _mm512_mask_storeu_ps(gw + v * 16, mk[v], acc[v]);
}

template <class WT>
void backward_rows(const WT* w, const bf16* X, std::size_t xs, float* dX, std::size_t dxs,
                   const std::uint32_t* rows, const float* coef, std::size_t count, std::size_t dim,
                   float* gw) {
  for (std::size_t d = 0; d < dim; d += 128) {
    const std::size_t len = dim - d < 128 ? dim - d : 128;
    backward_block(w + d, X + d, xs, dX + d, dxs, rows, coef, count, len, gw + d);
  }
}

inline void st16(float* p, __mmask16 m, __m512 x, std::uint32_t, std::size_t) {
  _mm512_mask_storeu_ps(p, m, x);
}
inline void st16(bf16* p, __mmask16 m, __m512 x, std::uint32_t seed, std::size_t i0) {
  _mm256_mask_storeu_epi16(p, m, sr16(x, noise16(seed, i0)));
}

// step m / (sqrt(v) + eps) without the divider (vsqrtps + vdivps on 512-bit vectors cost ~20
// cycles of throughput per vector, the largest share of the update): sqrt(v) = v rsqrt(v) and
// 1 / (sqrt(v) + eps) from vrcp14ps, each refined by one Newton step (relative error ~1e-7,
// far below the bf16 rounding the result goes through).
inline __m512 adam_delta(__m512 mi, __m512 vi, __m512 step, __m512 eps) {
  const __m512 half = _mm512_set1_ps(0.5f), three = _mm512_set1_ps(3.0f),
               two = _mm512_set1_ps(2.0f);
  const __mmask16 pos = _mm512_cmp_ps_mask(vi, _mm512_setzero_ps(), _CMP_GT_OQ);
  __m512 r = _mm512_rsqrt14_ps(vi);  // r <- r (3 - v r^2) / 2
  r = _mm512_mul_ps(_mm512_mul_ps(half, r), _mm512_fnmadd_ps(_mm512_mul_ps(vi, r), r, three));
  const __m512 d = _mm512_add_ps(_mm512_maskz_mul_ps(pos, vi, r), eps);  // sqrt(v) + eps
  __m512 q = _mm512_rcp14_ps(d);                                         // q <- q (2 - d q)
  q = _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, two));
  return _mm512_mul_ps(_mm512_mul_ps(step, mi), q);
}

// The scalar reference's moments bit for bit (same operations, same order, explicit FMA); the
// weight step through adam_delta.
template <class MT>
void adam(bf16* w, MT* m, MT* v, const float* g, std::size_t n, const AdamStep& s,
          const std::uint32_t* seeds) {
  const __m512 b1 = _mm512_set1_ps(s.beta1), b2 = _mm512_set1_ps(s.beta2);
  const __m512 c1 = _mm512_set1_ps(1 - s.beta1), c2 = _mm512_set1_ps(1 - s.beta2);
  const __m512 step = _mm512_set1_ps(s.step), eps = _mm512_set1_ps(s.eps);
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 gi = _mm512_maskz_loadu_ps(k, g + i);
    const __m512 mi = _mm512_fmadd_ps(b1, ld16(m + i, k), _mm512_mul_ps(c1, gi));
    const __m512 vi = _mm512_fmadd_ps(b2, ld16(v + i, k), _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
    const __m512 wi = _mm512_sub_ps(ld16(w + i, k), adam_delta(mi, vi, step, eps));
    st16(m + i, k, mi, seeds[1], i);
    st16(v + i, k, vi, seeds[2], i);
    st16(w + i, k, wi, seeds[0], i);
  }
}

Bf16Kernels avx512_table(const char* name) {
  return Bf16Kernels{name,
                     to_bf16,
                     to_bf16_sr,
                     to_f32,
                     dot_f32,
                     dot_rows<bf16, bf16>,
                     dot_rows<float, bf16>,
                     dot_rows<bf16, float>,
                     backward_rows<bf16>,
                     backward_rows<float>,
                     adam<bf16>,
                     adam<float>};
}

}  // namespace
}  // namespace glide::engine
