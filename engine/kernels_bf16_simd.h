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

// 4 rows x up to 64 columns of dX held in 16 registers while K rows of W stream past: each W
// vector loaded serves 4 rows, and dX is read and written once per call instead of K times.
// (Written out: with the accumulators in an array g++ 12 stored them all to the stack on every
// iteration, 2.8x slower.)
inline void outer_block4(const float* C, std::size_t ck, std::size_t cs, const float* W,
                         std::size_t ws, std::size_t K, std::size_t len, float* dX,
                         std::size_t dxs) {
  const __mmask16 m0 = mask16(len), m1 = mask16(len > 16 ? len - 16 : 0),
                  m2 = mask16(len > 32 ? len - 32 : 0), m3 = mask16(len > 48 ? len - 48 : 0);
  float* x0 = dX;
  float* x1 = dX + dxs;
  float* x2 = dX + 2 * dxs;
  float* x3 = dX + 3 * dxs;
#define GLIDE_LOAD_ROW(r, x)                       \
  __m512 r##0 = _mm512_maskz_loadu_ps(m0, x);      \
  __m512 r##1 = _mm512_maskz_loadu_ps(m1, x + 16); \
  __m512 r##2 = _mm512_maskz_loadu_ps(m2, x + 32); \
  __m512 r##3 = _mm512_maskz_loadu_ps(m3, x + 48);
  GLIDE_LOAD_ROW(a, x0)
  GLIDE_LOAD_ROW(b, x1)
  GLIDE_LOAD_ROW(c, x2)
  GLIDE_LOAD_ROW(d, x3)
#undef GLIDE_LOAD_ROW
  for (std::size_t k = 0; k < K; ++k) {
    const float* w = W + k * ws;
    const __m512 w0 = _mm512_maskz_loadu_ps(m0, w), w1 = _mm512_maskz_loadu_ps(m1, w + 16),
                 w2 = _mm512_maskz_loadu_ps(m2, w + 32), w3 = _mm512_maskz_loadu_ps(m3, w + 48);
    const float* c = C + k * ck;
#define GLIDE_FMA_ROW(r, i)                      \
  {                                              \
    const __m512 cv = _mm512_set1_ps(c[i * cs]); \
    r##0 = _mm512_fmadd_ps(cv, w0, r##0);        \
    r##1 = _mm512_fmadd_ps(cv, w1, r##1);        \
    r##2 = _mm512_fmadd_ps(cv, w2, r##2);        \
    r##3 = _mm512_fmadd_ps(cv, w3, r##3);        \
  }
    GLIDE_FMA_ROW(a, 0)
    GLIDE_FMA_ROW(b, 1)
    GLIDE_FMA_ROW(c, 2)
    GLIDE_FMA_ROW(d, 3)
#undef GLIDE_FMA_ROW
  }
#define GLIDE_STORE_ROW(r, x)              \
  _mm512_mask_storeu_ps(x, m0, r##0);      \
  _mm512_mask_storeu_ps(x + 16, m1, r##1); \
  _mm512_mask_storeu_ps(x + 32, m2, r##2); \
  _mm512_mask_storeu_ps(x + 48, m3, r##3);
  GLIDE_STORE_ROW(a, x0)
  GLIDE_STORE_ROW(b, x1)
  GLIDE_STORE_ROW(c, x2)
  GLIDE_STORE_ROW(d, x3)
#undef GLIDE_STORE_ROW
}

// One row of dX: the tail of outer_rows.
inline void outer_block1(const float* C, std::size_t ck, const float* W, std::size_t ws,
                         std::size_t K, std::size_t len, float* dX) {
  for (std::size_t d = 0; d < len; d += 16) {
    const __mmask16 m = mask16(len - d);
    __m512 acc = _mm512_maskz_loadu_ps(m, dX + d);
    for (std::size_t k = 0; k < K; ++k)
      acc =
          _mm512_fmadd_ps(_mm512_set1_ps(C[k * ck]), _mm512_maskz_loadu_ps(m, W + k * ws + d), acc);
    _mm512_mask_storeu_ps(dX + d, m, acc);
  }
}

// K in blocks of 128, so the block of W (and of C) a row block reuses stays in L2.
void outer_rows(const float* C, std::size_t ck, std::size_t cs, const float* W, std::size_t ws,
                std::size_t K, std::size_t n, std::size_t dim, float* dX, std::size_t dxs) {
  constexpr std::size_t kKBlock = 128;
  for (std::size_t k0 = 0; k0 < K; k0 += kKBlock) {
    const std::size_t kn = K - k0 < kKBlock ? K - k0 : kKBlock;
    const float* Ck = C + k0 * ck;
    const float* Wk = W + k0 * ws;
    for (std::size_t s = 0; s < n; s += 4) {
      for (std::size_t d = 0; d < dim; d += 64) {
        const std::size_t len = dim - d < 64 ? dim - d : 64;
        if (s + 4 <= n)
          outer_block4(Ck + s * cs, ck, cs, Wk + d, ws, kn, len, dX + s * dxs + d, dxs);
        else
          for (std::size_t t = s; t < n; ++t)
            outer_block1(Ck + t * cs, ck, Wk + d, ws, kn, len, dX + t * dxs + d);
      }
    }
  }
}

constexpr std::uint32_t kWeyl = 0x9E3779B9u;
// adam_draw(seed, i) for the 16 lanes whose element indices are i0 + idx, given idx_g = idx kWeyl.
inline __m512i draw16(std::uint32_t seed, std::size_t i0, __m512i idx_g) {
  __m512i x = _mm512_add_epi32(set1(seed + static_cast<std::uint32_t>(i0) * kWeyl), idx_g);
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  x = _mm512_mullo_epi32(x, set1(0x7FEB352Du));
  return _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
}

// The bits of stochastically rounded x (noise in the low 16 bits), bf16 in the upper half; the
// lower half is garbage. Infinities need no care: their low half is 0, so the noise cannot
// carry. A NaN keeps its upper half, quieted (as f32_to_bf16_sr).
inline __m512i sr_hi(__m512 x, __m512i noise) {
  const __m512i b = _mm512_castps_si512(x);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, set1(0x7FFFFFFF)), set1(0x7F800000));
  return _mm512_mask_or_epi32(_mm512_add_epi32(b, noise), nan, b, set1(0x00400000));
}

// step m / (sqrt(v) + eps) without the divider (vsqrtps + vdivps on 512-bit vectors cost ~20
// cycles of throughput per vector): sqrt(v) = v rsqrt(v) and 1 / (sqrt(v) + eps) from
// vrsqrt14ps / vrcp14ps (relative error 2^-14 each). Unrefined: the result only moves a weight
// that is then rounded to bf16 (gap 2^-8 of the weight, and the step is far smaller than the
// weight), so a ~1e-4 relative error in the step changes a stored bit only where the rounding
// noise lands within that error of the boundary.
inline __m512 adam_delta(__m512 mi, __m512 vi, __m512 step, __m512 eps) {
  const __mmask16 pos = _mm512_cmp_ps_mask(vi, _mm512_setzero_ps(), _CMP_GT_OQ);
  const __m512 d = _mm512_add_ps(_mm512_maskz_mul_ps(pos, vi, _mm512_rsqrt14_ps(vi)), eps);
  return _mm512_mul_ps(_mm512_mul_ps(step, mi), _mm512_rcp14_ps(d));
}

struct AdamConsts {
  __m512 b1, b2, c1, c2, step, eps;
  explicit AdamConsts(const AdamStep& s)
      : b1(_mm512_set1_ps(s.beta1)),
        b2(_mm512_set1_ps(s.beta2)),
        c1(_mm512_set1_ps(1 - s.beta1)),
        c2(_mm512_set1_ps(1 - s.beta2)),
        step(_mm512_set1_ps(s.step)),
        eps(_mm512_set1_ps(s.eps)) {}
};

// One Adam element group in fp32, the reference's operations in its order (explicit FMA).
inline void adam_f32(const AdamConsts& a, __m512 gi, __m512& w, __m512& m, __m512& v) {
  m = _mm512_fmadd_ps(a.b1, m, _mm512_mul_ps(a.c1, gi));
  v = _mm512_fmadd_ps(a.b2, v, _mm512_mul_ps(_mm512_mul_ps(a.c2, gi), gi));
  w = _mm512_sub_ps(w, adam_delta(m, v, a.step, a.eps));
}

// Adam on bf16 weights and moments, 32 elements per step. A 64-byte bf16 vector is split into
// its even elements (shifted up: the 32-bit lane's upper half) and odd ones (the lower half
// masked off) instead of being widened in order, and the results are put back the same way,
// so each array costs one shift and one logic op each way instead of a cross-lane widening and
// narrowing; only the fp32 gradient is permuted into the even/odd order.
void adam_bb(bf16* w, bf16* m, bf16* v, const float* g, std::size_t n, const AdamStep& s,
             std::uint32_t seed) {
  const AdamConsts a(s);
  const __m512i lo16 = set1(0xFFFF), hi16 = set1(0xFFFF0000u);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, set1(1));
  const __m512i even_g = _mm512_mullo_epi32(even, set1(kWeyl)),
                odd_g = _mm512_mullo_epi32(odd, set1(kWeyl));
  auto split = [&](const bf16* p, __mmask32 k, __m512& e, __m512& o) {
    const __m512i x = _mm512_maskz_loadu_epi16(k, p);
    e = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
    o = _mm512_castsi512_ps(_mm512_and_si512(x, hi16));
  };
  // Upper halves of the even and odd lanes' bits back into 32 bf16 in element order.
  auto join = [&](bf16* p, __mmask32 k, __m512i e, __m512i o) {
    _mm512_mask_storeu_epi16(p, k,
                             _mm512_ternarylogic_epi32(_mm512_srli_epi32(e, 16), o, hi16, 0xF8));
  };
  for (std::size_t i = 0; i < n; i += 32) {
    const std::size_t rem = n - i;
    const __mmask32 k = rem >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << rem) - 1);
    const __m512 ga = _mm512_maskz_loadu_ps(mask16(rem), g + i);
    const __m512 gb = _mm512_maskz_loadu_ps(mask16(rem > 16 ? rem - 16 : 0), g + i + 16);
    __m512 we, wo, me, mo, ve, vo;
    split(w + i, k, we, wo);
    split(m + i, k, me, mo);
    split(v + i, k, ve, vo);
    adam_f32(a, _mm512_permutex2var_ps(ga, even, gb), we, me, ve);
    adam_f32(a, _mm512_permutex2var_ps(ga, odd, gb), wo, mo, vo);
    const __m512i de = draw16(seed, i, even_g), dO = draw16(seed, i, odd_g);
    const __m512i dme = _mm512_srli_epi32(de, 16), dmo = _mm512_srli_epi32(dO, 16);
    join(m + i, k, sr_hi(me, dme), sr_hi(mo, dmo));
    join(v + i, k, sr_hi(ve, _mm512_and_si512(_mm512_xor_si512(de, dme), lo16)),
         sr_hi(vo, _mm512_and_si512(_mm512_xor_si512(dO, dmo), lo16)));
    join(w + i, k, sr_hi(we, _mm512_and_si512(de, lo16)), sr_hi(wo, _mm512_and_si512(dO, lo16)));
  }
}

// Adam on bf16 weights with fp32 moments, 16 elements per step.
void adam_bf(bf16* w, float* m, float* v, const float* g, std::size_t n, const AdamStep& s,
             std::uint32_t seed) {
  const AdamConsts a(s);
  const __m512i lanes_g = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), set1(kWeyl));
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    __m512 wi = ld16(w + i, k), mi = _mm512_maskz_loadu_ps(k, m + i),
           vi = _mm512_maskz_loadu_ps(k, v + i);
    adam_f32(a, _mm512_maskz_loadu_ps(k, g + i), wi, mi, vi);
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
    const __m512i hi = sr_hi(wi, _mm512_and_si512(draw16(seed, i, lanes_g), set1(0xFFFF)));
    _mm256_mask_storeu_epi16(w + i, k, _mm512_cvtepi32_epi16(_mm512_srli_epi32(hi, 16)));
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
                     outer_rows,
                     adam_bb,
                     adam_bf};
}

}  // namespace
}  // namespace glide::engine
