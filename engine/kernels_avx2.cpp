// AVX2 + FMA kernels; this file alone is compiled with -mavx2 -mfma.
#include "engine/kernels_simd.h"

namespace glide::engine {

const Kernels& avx2_kernels() {
  static const Kernels k = SimdKernels<xsimd::fma3<xsimd::avx2>>::table(Isa::kAvx2);
  return k;
}

}  // namespace glide::engine
