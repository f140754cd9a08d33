// The amx gemm table: fp32 products on bf16 tiles, each operand split in two (gemm_kernels.h).
// This file alone is compiled with -mamx-tile -mamx-bf16 -mavx512bf16; it is only called when
// the CPU has AMX and Linux granted this process the tile state.
//
// Tiles (palette 1, 16 rows x 64 bytes each): tmm0..3 a 32 x 32 block of C (2 x 2 tiles of
// 16 x 16 fp32), tmm4..5 two 16-row tiles of A (16 rows x 32 k, bf16), tmm6..7 two 16-column
// tiles of B (16 pairs of k x 16 columns, bf16 pairs: the layout tdpbf16ps reads). Both operands
// are packed tile by tile, each tile's 1 KB contiguous: rows 64 bytes apart stream from cache,
// where rows a matrix row apart (1 KB at 256 columns) fell into few cache sets.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "engine/gemm_kernels.h"

namespace glide::engine {

const GemmKernels& gemm_amx_table();

namespace {

constexpr std::size_t kTile = 16;   // rows of a tile, and fp32 columns of a C tile
constexpr std::size_t kBlock = 32;  // rows and columns of C per 2 x 2 tiles; k per tile product

struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 8; ++t) colsb[t] = 64, rows[t] = kTile;
  }
};

std::size_t round_up(std::size_t x, std::size_t to) {
  return (x + to - 1) / to * to;
}

constexpr std::size_t kTileElems = kTile * kBlock;  // bf16 elements in a tile

// Where element (i, p) of A (k_pad / 32 tiles a row of tiles) and (p, j) of B (n_pad / 16 tiles
// a row of tiles) are packed.
inline std::size_t a_at(std::size_t i, std::size_t p, std::size_t k_tiles) {
  return ((i / kTile) * k_tiles + p / kBlock) * kTileElems + (i % kTile) * kBlock + p % kBlock;
}
inline std::size_t b_at(std::size_t p, std::size_t j, std::size_t n_tiles) {
  return ((p / kBlock) * n_tiles + j / kTile) * kTileElems + ((p % kBlock) / 2) * kBlock +
         (j % kTile) * 2 + p % 2;
}

// hi = bf16(x) (nearest even), lo = bf16(x - hi), 16 lanes at a time.
inline void split16(__m512 x, __m256bh& hi, __m256bh& lo) {
  hi = _mm512_cvtneps_pbh(x);
  const __m512 hi32 =
      _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)hi), 16));
  lo = _mm512_cvtneps_pbh(_mm512_sub_ps(x, hi32));
}

inline void split1(float x, std::uint16_t& hi, std::uint16_t& lo) {
  alignas(64) float in[16] = {x};
  __m256bh h, l;
  split16(_mm512_load_ps(in), h, l);
  hi = static_cast<std::uint16_t>(_mm256_extract_epi16((__m256i)h, 0));
  lo = static_cast<std::uint16_t>(_mm256_extract_epi16((__m256i)l, 0));
}

// B tile by tile (b_at); the padding (p >= k or j >= n) is zero.
void pack_b(const float* b, std::size_t bk, std::size_t bn, std::size_t k, std::size_t n,
            PackedB& out) {
  out.packer = &gemm_amx_table();
  out.k = k;
  out.n = n;
  out.k_pad = round_up(std::max<std::size_t>(k, 1), kBlock);
  out.n_pad = round_up(std::max<std::size_t>(n, 1), kBlock);
  out.hi.assign(out.k_pad * out.n_pad, 0);
  out.lo.assign(out.k_pad * out.n_pad, 0);
  const std::size_t n_tiles = out.n_pad / kTile;
  const std::size_t n16 = bn == 1 ? n / 16 * 16 : 0;
  for (std::size_t p = 0; p < k; p += 2) {
    const float* r0 = b + p * bk;
    const float* r1 = p + 1 < k ? b + (p + 1) * bk : nullptr;
    for (std::size_t j = 0; j < n16; j += 16) {  // rows p and p + 1 into pairs, 16 columns
      __m256bh h0, l0, h1, l1;
      split16(_mm512_loadu_ps(r0 + j), h0, l0);
      split16(r1 ? _mm512_loadu_ps(r1 + j) : _mm512_setzero_ps(), h1, l1);
      const auto pairs = [](__m256bh x0, __m256bh x1) {
        return _mm512_or_si512(_mm512_cvtepu16_epi32((__m256i)x0),
                               _mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)x1), 16));
      };
      const std::size_t at = b_at(p, j, n_tiles);
      _mm512_storeu_si512(out.hi.data() + at, pairs(h0, h1));
      _mm512_storeu_si512(out.lo.data() + at, pairs(l0, l1));
    }
    for (std::size_t q = p; q < std::min(p + 2, k); ++q)
      for (std::size_t j = n16; j < n; ++j) {
        const std::size_t at = b_at(q, j, n_tiles);
        split1(b[q * bk + j * bn], out.hi[at], out.lo[at]);
      }
  }
}

// A's rows [0, m) in bf16, tile by tile (a_at) over m_pad rows (padding zero).
void pack_a(const float* a, std::size_t ai, std::size_t ak, std::size_t m, std::size_t k,
            std::size_t m_pad, std::size_t k_pad, std::vector<std::uint16_t>& hi,
            std::vector<std::uint16_t>& lo) {
  hi.assign(m_pad * k_pad, 0);
  lo.assign(m_pad * k_pad, 0);
  const std::size_t k_tiles = k_pad / kBlock;
  std::size_t i16 = 0, p16 = 0;
  if (ak == 1) {  // rows contiguous: 16 columns at a time
    i16 = m;
    p16 = k / 16 * 16;
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t p = 0; p < p16; p += 16) {
        __m256bh vh, vl;
        split16(_mm512_loadu_ps(a + i * ai + p), vh, vl);
        const std::size_t at = a_at(i, p, k_tiles);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi.data() + at), (__m256i)vh);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo.data() + at), (__m256i)vl);
      }
  } else if (ai == 1) {  // columns contiguous (A transposed): blocks of 16 x 16, transposed
    i16 = m / 16 * 16;
    p16 = k / 16 * 16;
    alignas(64) std::uint16_t th[16][16], tl[16][16];
    for (std::size_t i0 = 0; i0 < i16; i0 += 16)
      for (std::size_t p0 = 0; p0 < p16; p0 += 16) {
        for (std::size_t q = 0; q < 16; ++q) {
          __m256bh vh, vl;
          split16(_mm512_loadu_ps(a + i0 + (p0 + q) * ak), vh, vl);
          _mm256_store_si256(reinterpret_cast<__m256i*>(th[q]), (__m256i)vh);
          _mm256_store_si256(reinterpret_cast<__m256i*>(tl[q]), (__m256i)vl);
        }
        for (std::size_t r = 0; r < 16; ++r) {
          const std::size_t at = a_at(i0 + r, p0, k_tiles);
          for (std::size_t q = 0; q < 16; ++q) {
            hi[at + q] = th[q][r];
            lo[at + q] = tl[q][r];
          }
        }
      }
  }
  for (std::size_t i = 0; i < m; ++i)  // what the blocks left
    for (std::size_t p = i < i16 ? p16 : 0; p < k; ++p) {
      const std::size_t at = a_at(i, p, k_tiles);
      split1(a[i * ai + p * ak], hi[at], lo[at]);
    }
}

constexpr std::size_t kRow = 64;  // bytes between a packed tile's rows

// Two 16-row tiles of A into tmm4..5, two 16-column tiles of B into tmm6..7.
inline void load_a(const std::uint16_t* a0, const std::uint16_t* a1) {
  _tile_loadd(4, a0, kRow);
  _tile_loadd(5, a1, kRow);
}
inline void load_b(const std::uint16_t* b0, const std::uint16_t* b1) {
  _tile_loadd(6, b0, kRow);
  _tile_loadd(7, b1, kRow);
}
// The 2 x 2 block of sums (tmm0..3) += A tiles x B tiles.
inline void products_2x2() {
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
}

void gemm(const float* a, std::size_t ai, std::size_t ak, std::size_t m, const PackedB& b, float* c,
          std::size_t ldc) {
  if (b.packer != &gemm_amx_table())
    fail("gemm: the right-hand operand was packed for another kernel table");
  if (m == 0 || b.n == 0) return;
  const std::size_t k_pad = b.k_pad, n_pad = b.n_pad, m_pad = round_up(m, kBlock);
  thread_local std::vector<std::uint16_t> Ahi, Alo;
  pack_a(a, ai, ak, m, b.k, m_pad, k_pad, Ahi, Alo);
  static const TileConfig config;
  _tile_loadconfig(&config);
  alignas(64) float out[4][kTile * kTile];
  const std::size_t k_tiles = k_pad / kBlock, n_tiles = n_pad / kTile;
  for (std::size_t i0 = 0; i0 < m_pad; i0 += kBlock) {
    for (std::size_t j0 = 0; j0 < n_pad; j0 += kBlock) {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (std::size_t kt = 0; kt < k_tiles; ++kt) {
        const std::size_t a0 = ((i0 / kTile) * k_tiles + kt) * kTileElems,
                          a1 = a0 + k_tiles * kTileElems;
        const std::size_t b0 = (kt * n_tiles + j0 / kTile) * kTileElems, b1 = b0 + kTileElems;
        // hi x hi, hi x lo, lo x hi into the same four sums.
        load_a(Ahi.data() + a0, Ahi.data() + a1);
        load_b(b.hi.data() + b0, b.hi.data() + b1);
        products_2x2();
        load_b(b.lo.data() + b0, b.lo.data() + b1);
        products_2x2();
        load_a(Alo.data() + a0, Alo.data() + a1);
        load_b(b.hi.data() + b0, b.hi.data() + b1);
        products_2x2();
      }
      constexpr std::size_t kOutStride = kTile * sizeof(float);
      _tile_stored(0, out[0], kOutStride);
      _tile_stored(1, out[1], kOutStride);
      _tile_stored(2, out[2], kOutStride);
      _tile_stored(3, out[3], kOutStride);
      for (int t = 0; t < 4; ++t) {
        const std::size_t r0 = i0 + (t / 2) * kTile, c0 = j0 + (t % 2) * kTile;
        if (r0 >= m || c0 >= b.n) continue;
        const std::size_t nc = std::min(kTile, b.n - c0);
        const __mmask16 mask = static_cast<__mmask16>((1u << nc) - 1);
        for (std::size_t r = 0; r < kTile && r0 + r < m; ++r) {
          float* dst = c + (r0 + r) * ldc + c0;
          const __m512 sum =
              _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), _mm512_load_ps(out[t] + r * kTile));
          _mm512_mask_storeu_ps(dst, mask, sum);
        }
      }
    }
  }
  _tile_release();
}

}  // namespace

const GemmKernels& gemm_amx_table() {
  static const GemmKernels k{"amx-bf16", pack_b, gemm};
  return k;
}

}  // namespace glide::engine
