// The scalar reference of the score kernels and the family's tables by level.
#include "engine/score_kernels.h"

#include <cmath>

namespace glide::engine {

const ScoreKernels& score_avx2_table();    // score_kernels_avx2.cpp
const ScoreKernels& score_avx512_table();  // score_kernels_avx512.cpp

namespace {

float max_exp_sum(const float* z, std::size_t n, float* max) {
  float m = z[0];
  for (std::size_t i = 1; i < n; ++i) m = z[i] > m ? z[i] : m;
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::exp(z[i] - m);
  *max = m;
  return s;
}

std::size_t find_at_least(const float* z, std::size_t from, std::size_t n, float bound) {
  for (std::size_t q = from; q < n; ++q)
    if (z[q] >= bound) return q;
  return n;
}

const ScoreKernels& score_scalar_table() {
  static const ScoreKernels k{"scalar", max_exp_sum, find_at_least};
  return k;
}

}  // namespace

const KernelDispatch<ScoreKernels>& score_kernel_dispatch() {
  static const KernelDispatch<ScoreKernels> dispatch{
      {Isa::kScalar, [] { return &score_scalar_table(); }},
      {Isa::kAvx2, [] { return &score_avx2_table(); }},
      {Isa::kAvx512, [] { return &score_avx512_table(); }},
  };
  return dispatch;
}

const ScoreKernels& score_kernels() {
  return score_kernel_dispatch().active();
}

}  // namespace glide::engine
