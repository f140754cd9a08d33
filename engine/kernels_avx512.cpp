// AVX-512 kernels; this file alone is compiled with the AVX-512 flags.
#include "engine/kernels_simd.h"

namespace glide::engine {

const Kernels& avx512_kernels() {
  static const Kernels k = SimdKernels<xsimd::avx512bw>::table(Isa::kAvx512);
  return k;
}

}  // namespace glide::engine
