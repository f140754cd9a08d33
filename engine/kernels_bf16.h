// bf16 kernels for the output layer: conversions (round-to-nearest-even and stochastic rounding),
// dot products of bf16 rows with fp32 or bf16 activations, the fused backward pass and Adam on
// bf16 storage. A scalar reference, an AVX-512 path (bf16 expanded to fp32 by a shift) and, on
// CPUs with AVX512_BF16, vdpbf16ps for bf16 x bf16 dot products. Chosen like kernels().
//
// bf16 is the upper half of an IEEE fp32: 1 sign, 8 exponent and 7 mantissa bits. Expanding is
// exact (a shift); narrowing rounds. Stochastic rounding adds 16 bits of noise below the kept
// half before truncating, so E[round(x)] = x and small updates survive in expectation. The
// noise of element i under seed s is sr_noise(s, i): a counter-based hash, so a result depends
// only on (seed, index) and never on thread count or vector width.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>

#include "engine/kernels.h"

namespace glide::engine {

using bf16 = std::uint16_t;

constexpr std::size_t kBf16RowAlign = 32;  // elements: one 64-byte cache line
inline std::size_t padded_bf16(std::size_t n) {
  return (n + kBf16RowAlign - 1) / kBf16RowAlign * kBf16RowAlign;
}

inline float bf16_to_f32(bf16 h) {
  return std::bit_cast<float>(std::uint32_t{h} << 16);
}

// Round to nearest, ties to even; NaN stays a (quiet) NaN of the same sign.
inline bf16 f32_to_bf16(float x) {
  const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<bf16>((b >> 16) | 0x40u);
  return static_cast<bf16>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

// A 32-bit integer hash with good avalanche (lowbias32 constants).
inline std::uint32_t mix32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x21F0AAADu;
  x ^= x >> 15;
  x *= 0x735A2D97u;
  x ^= x >> 15;
  return x;
}

// The rounding noise of element i under `seed` (only its low 16 bits are used).
inline std::uint32_t sr_noise(std::uint32_t seed, std::uint32_t i) {
  return mix32(seed + i * 0x9E3779B9u);
}

// Stochastic rounding with noise r (low 16 bits): rounds up with probability equal to the
// distance from the lower bf16 neighbour, in units of the gap. NaN stays NaN; inf stays inf.
inline bf16 f32_to_bf16_sr(float x, std::uint32_t r) {
  const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<bf16>((b >> 16) | 0x40u);
  if ((b & 0x7FFFFFFFu) == 0x7F800000u) return static_cast<bf16>(b >> 16);
  return static_cast<bf16>((b + (r & 0xFFFFu)) >> 16);
}

// The seed of one stochastically rounded row update: from its row index and the optimizer step.
inline std::uint32_t sr_seed(std::uint64_t row, std::uint64_t step) {
  const std::uint64_t h = (row * 0x9E3779B97F4A7C15ull) ^ (step * 0xC2B2AE3D27D4EB4Full);
  return mix32(static_cast<std::uint32_t>(h ^ (h >> 32)));
}

// The 32 random bits of element i of an Adam update under `seed`, shared by its three roundings:
// the weight takes the low 16 bits, the first moment the high 16, the second moment their xor
// (adam_noise_*). Each is uniform because the draw is a bijection of seed + i G and the seed is a
// hash of (row, step), so every rounding stays unbiased; one multiply per element instead of the
// six of three mix32 hashes, which made the bf16 update compute-bound (measured ~2.4x the fp32
// update's cycles on a cached row).
inline std::uint32_t adam_draw(std::uint32_t seed, std::uint32_t i) {
  std::uint32_t x = seed + i * 0x9E3779B9u;
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  return x ^ (x >> 15);
}
inline std::uint32_t adam_noise_w(std::uint32_t d) {
  return d & 0xFFFFu;
}
inline std::uint32_t adam_noise_m(std::uint32_t d) {
  return d >> 16;
}
inline std::uint32_t adam_noise_v(std::uint32_t d) {
  return (d ^ (d >> 16)) & 0xFFFFu;
}

struct Bf16Kernels {
  const char* name;                                           // "scalar", "avx512" or "avx512-bf16"
  void (*to_bf16)(const float* x, bf16* out, std::size_t n);  // round to nearest even
  // Stochastic rounding, element i with noise sr_noise(seed, i).
  void (*to_bf16_sr)(const float* x, bf16* out, std::size_t n, std::uint32_t seed);
  void (*to_f32)(const bf16* x, float* out, std::size_t n);
  // sum w[i] * x[i]: a bf16 row against fp32 activations.
  float (*dot_f32)(const bf16* w, const float* x, std::size_t n);
  // out[k] = w . X[rows[k] * stride + 0..dim), for each weight / activation storage:
  // bf16 x bf16 (vdpbf16ps where the CPU has it), fp32 x bf16, bf16 x fp32.
  void (*dot_rows_bb)(const bf16* w, const bf16* X, std::size_t stride, const std::uint32_t* rows,
                      std::size_t count, std::size_t dim, float* out);
  void (*dot_rows_fb)(const float* w, const bf16* X, std::size_t stride, const std::uint32_t* rows,
                      std::size_t count, std::size_t dim, float* out);
  void (*dot_rows_bf)(const bf16* w, const float* X, std::size_t stride, const std::uint32_t* rows,
                      std::size_t count, std::size_t dim, float* out);
  // A neuron's backward pass in one sweep over the rows that activate it (fp32 sums):
  // gw[0..dim) = sum_k coef[k] * X[rows[k] * x_stride] and
  // dX[rows[k] * dx_stride + 0..dim) += coef[k] * w, for bf16 or fp32 weights, bf16 activations.
  void (*backward_rows_bb)(const bf16* w, const bf16* X, std::size_t x_stride, float* dX,
                           std::size_t dx_stride, const std::uint32_t* rows, const float* coef,
                           std::size_t count, std::size_t dim, float* gw);
  void (*backward_rows_fb)(const float* w, const bf16* X, std::size_t x_stride, float* dX,
                           std::size_t dx_stride, const std::uint32_t* rows, const float* coef,
                           std::size_t count, std::size_t dim, float* gw);
  // dX[s * dx_stride + 0..dim) += sum_k C[k * ck + s * cs] * W[k * w_stride + 0..dim) for
  // s < n (fp32): the matrix products of the neurons that every sample of the batch activates
  // (SharedRows in output_ops.cpp), blocked so that dX stays in registers while W streams by.
  void (*outer_rows)(const float* C, std::size_t ck, std::size_t cs, const float* W,
                     std::size_t w_stride, std::size_t K, std::size_t n, std::size_t dim, float* dX,
                     std::size_t dx_stride);
  // Adam on bf16 weights and moments, computed in fp32 and stored with stochastic rounding,
  // element i with the noises of adam_draw(seed, i) (seed = sr_seed(row, t)). The moments are
  // the same fp32 operations in the same order on every path (explicit FMA), so every path
  // stores the same m and v bits; the vector paths compute the weight step
  // step m / (sqrt(v) + eps) with reciprocal square root and reciprocal approximations
  // (relative error ~1e-4, far below the bf16 gap of 2^-8 the weight is rounded to) instead of
  // a square root and a division, so a stored weight may differ from the reference's by one bf16
  // step where the noise lands right at the rounding boundary.
  void (*adam_bf16)(bf16* w, bf16* m, bf16* v, const float* g, std::size_t n, const AdamStep& s,
                    std::uint32_t seed);
  // Adam on bf16 weights with fp32 moments (the weights rounded as in adam_bf16).
  void (*adam_bf16_w)(bf16* w, float* m, float* v, const float* g, std::size_t n, const AdamStep& s,
                      std::uint32_t seed);
};

// The bf16 family's tables by level: scalar, avx512 (bf16 expanded to fp32 by a shift) and
// avx512-bf16 (plus vdpbf16ps for dot_rows_bb); avx2 uses the scalar table.
const KernelDispatch<Bf16Kernels>& bf16_kernel_dispatch();
// The active level's table (glide::active_isa()).
const Bf16Kernels& bf16_kernels();
const Bf16Kernels& bf16_scalar_kernels();

}  // namespace glide::engine
