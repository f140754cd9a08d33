// AMX int8 kernels: the batched u8 x s8 product on tiles (tdpbusd: a 16 x 64 u8 tile times a
// 64 x 16 s8 tile into 16 x 16 s32 sums). This file alone is compiled with -mamx-tile
// -mamx-int8 (and AVX-512 for the dequantization); it is only called when the CPU has AMX and Linux
// granted this process the tile state. Results equal the scalar reference exactly: the integer sums
// are exact, and the dequantization does the same float operations in the same order
// (-ffp-contract=off). Small batches (fewer than 16 samples, where a tile would be mostly padding)
// and dot products go to the VNNI kernels.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "quant/int8_kernels.h"

namespace glide::quant {

const Int8Kernels& int8_vnni_table();  // int8_kernels_vnni.cpp

namespace {

constexpr std::size_t kTile = 16;  // rows of every tile; 64 bytes per row

// Palette 1: tmm0..3 = C for 4 groups of 16 samples (16 x 16 s32 each), tmm4 = A (16 samples x
// 64 u8), tmm5 = B (16 groups of 4 k x 16 output rows, s8). Four independent accumulators keep
// the tile unit busy while each B tile is reused 4 times.
constexpr int kGroups = 4;
struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 6; ++t) colsb[t] = 64, rows[t] = kTile;
  }
};

// One sample group's C tile into the output: the k tail (k >= n64) in scalar, then
// float(acc) * (w_scale * x_scale) + bias for 16 rows at once, as the scalar reference rounds.
void dequantize(std::int32_t* C, const std::int8_t* W, std::size_t w_stride, const float* w_scale,
                const float* bias, std::size_t r0, std::size_t nr, const std::uint8_t* X,
                std::size_t x_stride, const float* x_scale, std::size_t s0, std::size_t ns,
                std::size_t n64, std::size_t n, float* out, std::size_t ld) {
  const __mmask16 m = static_cast<__mmask16>((1u << nr) - 1);
  const __m512 ws = _mm512_maskz_loadu_ps(m, w_scale + r0);
  const __m512 b = _mm512_maskz_loadu_ps(m, bias + r0);
  for (std::size_t i = 0; i < ns; ++i) {
    std::int32_t* c = C + i * kTile;
    if (n64 < n) {
      const std::uint8_t* x = X + (s0 + i) * x_stride;
      for (std::size_t j = 0; j < nr; ++j) {
        const std::int8_t* w = W + (r0 + j) * w_stride;
        for (std::size_t k = n64; k < n; ++k) c[j] += static_cast<std::int32_t>(x[k]) * w[k];
      }
    }
    const __m512 acc = _mm512_cvtepi32_ps(_mm512_load_si512(c));
    const __m512 scale = _mm512_mul_ps(ws, _mm512_set1_ps(x_scale[s0 + i]));
    _mm512_mask_storeu_ps(out + (s0 + i) * ld + r0, m, _mm512_add_ps(_mm512_mul_ps(acc, scale), b));
  }
}

// The products over k < n64 (a multiple of 64) on tiles, the rest of k in scalar, then the
// dequantization.
void gemm_u8s8_f32(const std::int8_t* W, std::size_t w_stride, const float* w_scale,
                   const float* bias, std::size_t rows, const std::uint8_t* X, std::size_t x_stride,
                   const float* x_scale, std::size_t samples, std::size_t n, float* out,
                   std::size_t ld) {
  const std::size_t n64 = n / 64 * 64;
  if (samples < kTile || n64 == 0)
    return int8_vnni_table().gemm_u8s8_f32(W, w_stride, w_scale, bias, rows, X, x_stride, x_scale,
                                           samples, n, out, ld);
  const std::size_t k_tiles = n64 / 64, group = kGroups * kTile;
  const std::size_t s_pad = (samples + group - 1) / group * group;
  // The samples packed contiguously (rows past `samples` zero), and one row group's weights in
  // the VNNI layout tdpbusd wants: Bp[kt][g][4 j + t] = W[r0 + j][64 kt + 4 g + t].
  thread_local std::vector<std::uint8_t> Xp;
  thread_local std::vector<std::int8_t> Bp;
  Xp.assign(s_pad * n64, 0);
  for (std::size_t s = 0; s < samples; ++s) std::memcpy(&Xp[s * n64], X + s * x_stride, n64);
  Bp.resize(k_tiles * kTile * 64);
  alignas(64) std::int32_t C[kGroups][kTile * kTile];

  static const TileConfig config;
  _tile_loadconfig(&config);
  for (std::size_t r0 = 0; r0 < rows; r0 += kTile) {
    const std::size_t nr = std::min(kTile, rows - r0);
    if (nr < kTile) std::fill(Bp.begin(), Bp.end(), std::int8_t{0});  // the missing rows: 0
    for (std::size_t j = 0; j < nr; ++j) {
      const std::int8_t* w = W + (r0 + j) * w_stride;
      for (std::size_t kt = 0; kt < k_tiles; ++kt)
        for (std::size_t g = 0; g < kTile; ++g)
          std::memcpy(&Bp[(kt * kTile + g) * 64 + 4 * j], w + 64 * kt + 4 * g, 4);
    }
    for (std::size_t s0 = 0; s0 < samples; s0 += kGroups * kTile) {
      // Groups past the padded samples compute on zeros and are not stored.
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      const std::uint8_t* A = &Xp[s0 * n64];
      for (std::size_t kt = 0; kt < k_tiles; ++kt) {
        _tile_loadd(5, &Bp[kt * kTile * 64], 64);
        _tile_loadd(4, A + 64 * kt, n64);
        _tile_dpbusd(0, 4, 5);
        _tile_loadd(4, A + kTile * n64 + 64 * kt, n64);
        _tile_dpbusd(1, 4, 5);
        _tile_loadd(4, A + 2 * kTile * n64 + 64 * kt, n64);
        _tile_dpbusd(2, 4, 5);
        _tile_loadd(4, A + 3 * kTile * n64 + 64 * kt, n64);
        _tile_dpbusd(3, 4, 5);
      }
      constexpr std::size_t kC = kTile * sizeof(std::int32_t);
      _tile_stored(0, C[0], kC);
      _tile_stored(1, C[1], kC);
      _tile_stored(2, C[2], kC);
      _tile_stored(3, C[3], kC);
      for (int g = 0; g < kGroups; ++g) {
        const std::size_t sg = s0 + g * kTile;
        if (sg >= samples) break;
        dequantize(C[g], W, w_stride, w_scale, bias, r0, nr, X, x_stride, x_scale, sg,
                   std::min(kTile, samples - sg), n64, n, out, ld);
      }
    }
  }
  _tile_release();
}

}  // namespace

const Int8Kernels& int8_amx_table() {
  static const Int8Kernels k{"amx-int8", int8_vnni_table().dot_u8s8, gemm_u8s8_f32};
  return k;
}

}  // namespace glide::quant
