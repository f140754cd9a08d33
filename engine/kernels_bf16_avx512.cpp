// The AVX-512 bf16 kernels for CPUs without AVX512_BF16 (compiled with the AVX-512 flags only).
#include "engine/kernels_bf16_simd.h"

namespace glide::engine {

const Bf16Kernels& bf16_avx512_table() {
  static const Bf16Kernels k = avx512_table("avx512");
  return k;
}

}  // namespace glide::engine
