// Kernels of the exact predictor's pass over a block of scores (engine/predictor.cpp): the
// block's softmax normaliser (its maximum and the sum of exp(score - maximum), read once more from
// L1, nothing written back) and the search for the few scores that can enter a top-k. A scalar
// reference and AVX2 / AVX-512 tables (their own exp: range reduction by ln 2 in two parts and a
// degree-7 polynomial, within 2 ulp of std::exp; the sums in another order), one per level.
#pragma once
#include <cstddef>

#include "common/simd_dispatch.h"

namespace glide::engine {

struct ScoreKernels {
  const char* name;  // "scalar", "avx2", "avx512"
  // *max = the maximum of z[0..n); returns the sum of exp(z[i] - *max) (n >= 1, z finite).
  float (*max_exp_sum)(const float* z, std::size_t n, float* max);
  // The first q in [from, n) with z[q] >= bound, or n when there is none.
  std::size_t (*find_at_least)(const float* z, std::size_t from, std::size_t n, float bound);
};

// The family's tables by level: scalar, avx2, avx512.
const KernelDispatch<ScoreKernels>& score_kernel_dispatch();
// The active level's table (glide::active_isa()).
const ScoreKernels& score_kernels();

}  // namespace glide::engine
