// AVX512-VNNI int8 kernels (vpdpbusd: 64 u8 x s8 products summed into 16 s32 lanes per
// instruction). This file alone is compiled with -mavx512vnni; it is only called when the CPU
// has the feature. Results equal the scalar reference exactly: integer sums are exact, and the
// dequantization does the same float operations in the same order (no contraction: this file
// is compiled with -ffp-contract=off).
#include <immintrin.h>

#include "quant/int8_kernels.h"

namespace glide::quant {

namespace {

inline __mmask64 tail_mask(std::size_t rem) {
  return rem >= 64 ? ~__mmask64{0} : ((__mmask64{1} << rem) - 1);
}

std::int32_t dot_u8s8(const std::uint8_t* a, const std::int8_t* w, std::size_t n) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(w + i));
    acc1 =
        _mm512_dpbusd_epi32(acc1, _mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(w + i + 64));
  }
  for (; i < n; i += 64) {
    const __mmask64 m = tail_mask(n - i);
    acc0 = _mm512_dpbusd_epi32(acc0, _mm512_maskz_loadu_epi8(m, a + i),
                               _mm512_maskz_loadu_epi8(m, w + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

// Lane j of the result = the sum of the 16 lanes of acc[j].
inline __m512i reduce16(const __m512i* acc) {
  __m512i t[8], u[4], v[2];
  for (int p = 0; p < 8; ++p)  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
    t[p] = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[2 * p], acc[2 * p + 1]),
                            _mm512_unpackhi_epi32(acc[2 * p], acc[2 * p + 1]));
  for (int p = 0; p < 4; ++p)  // per 128-bit lane: [a, b, c, d] (that lane's share)
    u[p] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * p], t[2 * p + 1]),
                            _mm512_unpackhi_epi64(t[2 * p], t[2 * p + 1]));
  for (int p = 0; p < 2; ++p)  // 128-bit lanes: [u0 L0+L1, u0 L2+L3, u1 L0+L1, u1 L2+L3]
    v[p] = _mm512_add_epi32(_mm512_shuffle_i32x4(u[2 * p], u[2 * p + 1], 0x88),
                            _mm512_shuffle_i32x4(u[2 * p], u[2 * p + 1], 0xDD));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(v[0], v[1], 0x88),
                          _mm512_shuffle_i32x4(v[0], v[1], 0xDD));
}

// 4 weight rows x 4 samples; acc[s * 4 + r].
inline void tile4x4(const std::int8_t* W, std::size_t w_stride, const float* w_scale,
                    const float* bias, const std::uint8_t* X, std::size_t x_stride,
                    const float* x_scale, std::size_t n, float* out, std::size_t ld) {
  __m512i acc[16];
  for (auto& a : acc) a = _mm512_setzero_si512();
  const std::int8_t* w[4] = {W, W + w_stride, W + 2 * w_stride, W + 3 * w_stride};
  const std::uint8_t* x[4] = {X, X + x_stride, X + 2 * x_stride, X + 3 * x_stride};
  for (std::size_t i = 0; i < n; i += 64) {
    const __mmask64 m = tail_mask(n - i);
    __m512i wv[4], xv[4];
    for (int r = 0; r < 4; ++r) wv[r] = _mm512_maskz_loadu_epi8(m, w[r] + i);
    for (int s = 0; s < 4; ++s) xv[s] = _mm512_maskz_loadu_epi8(m, x[s] + i);
    for (int s = 0; s < 4; ++s)
      for (int r = 0; r < 4; ++r)
        acc[s * 4 + r] = _mm512_dpbusd_epi32(acc[s * 4 + r], xv[s], wv[r]);
  }
  const __m512 sums = _mm512_cvtepi32_ps(reduce16(acc));
  const __m512i mod4 = _mm512_set_epi32(3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0);
  const __m512i div4 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  const __m512 ws = _mm512_permutexvar_ps(mod4, _mm512_castps128_ps512(_mm_loadu_ps(w_scale)));
  const __m512 b = _mm512_permutexvar_ps(mod4, _mm512_castps128_ps512(_mm_loadu_ps(bias)));
  const __m512 xs = _mm512_permutexvar_ps(div4, _mm512_castps128_ps512(_mm_loadu_ps(x_scale)));
  const __m512 res = _mm512_add_ps(_mm512_mul_ps(sums, _mm512_mul_ps(ws, xs)), b);
  _mm_storeu_ps(out, _mm512_extractf32x4_ps(res, 0));
  _mm_storeu_ps(out + ld, _mm512_extractf32x4_ps(res, 1));
  _mm_storeu_ps(out + 2 * ld, _mm512_extractf32x4_ps(res, 2));
  _mm_storeu_ps(out + 3 * ld, _mm512_extractf32x4_ps(res, 3));
}

// 16 weight rows x 1 sample (the samples a 4 x 4 tile leaves over, a batch of one): one
// accumulator per row, reduced together, dequantized 16 rows at once.
inline void rows16x1(const std::int8_t* W, std::size_t w_stride, const float* w_scale,
                     const float* bias, const std::uint8_t* x, float x_scale, std::size_t n,
                     float* out) {
  __m512i acc[16];
  for (auto& a : acc) a = _mm512_setzero_si512();
  for (std::size_t i = 0; i < n; i += 64) {
    for (int r = 0; r < 16; ++r)
      _mm_prefetch(reinterpret_cast<const char*>(W + (r + 64) * w_stride + i), _MM_HINT_T0);
    const __mmask64 m = tail_mask(n - i);
    const __m512i xv = _mm512_maskz_loadu_epi8(m, x + i);
    for (int r = 0; r < 16; ++r)
      acc[r] = _mm512_dpbusd_epi32(acc[r], xv, _mm512_maskz_loadu_epi8(m, W + r * w_stride + i));
  }
  const __m512 sums = _mm512_cvtepi32_ps(reduce16(acc));
  const __m512 scale = _mm512_mul_ps(_mm512_loadu_ps(w_scale), _mm512_set1_ps(x_scale));
  _mm512_storeu_ps(out, _mm512_add_ps(_mm512_mul_ps(sums, scale), _mm512_loadu_ps(bias)));
}

void gemm_u8s8_f32(const std::int8_t* W, std::size_t w_stride, const float* w_scale,
                   const float* bias, std::size_t rows, const std::uint8_t* X, std::size_t x_stride,
                   const float* x_scale, std::size_t samples, std::size_t n, float* out,
                   std::size_t ld) {
  const std::size_t r4 = rows / 4 * 4, r16 = rows / 16 * 16, s4 = samples / 4 * 4;
  for (std::size_t r = 0; r < r4; r += 4)
    for (std::size_t s = 0; s < s4; s += 4)
      tile4x4(W + r * w_stride, w_stride, w_scale + r, bias + r, X + s * x_stride, x_stride,
              x_scale + s, n, out + s * ld + r, ld);
  auto one = [&](std::size_t r, std::size_t s) {
    const std::int32_t acc = dot_u8s8(X + s * x_stride, W + r * w_stride, n);
    const float scale = w_scale[r] * x_scale[s];
    out[s * ld + r] = static_cast<float>(acc) * scale + bias[r];
  };
  for (std::size_t s = s4; s < samples; ++s) {
    for (std::size_t r = 0; r < r16; r += 16)
      rows16x1(W + r * w_stride, w_stride, w_scale + r, bias + r, X + s * x_stride, x_scale[s], n,
               out + s * ld + r);
    for (std::size_t r = r16; r < rows; ++r) one(r, s);
  }
  for (std::size_t r = r4; r < rows; ++r)
    for (std::size_t s = 0; s < s4; ++s) one(r, s);
}

}  // namespace

const Int8Kernels& int8_vnni_table() {
  static const Int8Kernels k{"avx512-vnni", dot_u8s8, gemm_u8s8_f32};
  return k;
}

}  // namespace glide::quant
