// int8 inference kernels: u8 activations x s8 weights -> s32 sums (exact integers), with the
// dequantization (x scale_w[r] x scale_x[s] + bias[r]) fused into the block kernel's output.
// A scalar reference and an AVX512-VNNI path (vpdpbusd) that gives exactly the same results.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/simd_dispatch.h"

namespace glide::quant {

struct Int8Kernels {
  const char* name;  // "scalar", "avx512-vnni" or "amx-int8"
  // sum_i a[i] * w[i] (exact; no overflow for n < 66,000).
  std::int32_t (*dot_u8s8)(const std::uint8_t* a, const std::int8_t* w, std::size_t n);
  // For r < rows, s < samples:
  //   out[s * ld + r] = float(sum_i X[s * x_stride + i] * W[r * w_stride + i]) *
  //                     (w_scale[r] * x_scale[s]) + bias[r]
  // (float(acc) * (ws * xs) + b, rounded in that order, no fused multiply-add).
  void (*gemm_u8s8_f32)(const std::int8_t* W, std::size_t w_stride, const float* w_scale,
                        const float* bias, std::size_t rows, const std::uint8_t* X,
                        std::size_t x_stride, const float* x_scale, std::size_t samples,
                        std::size_t n, float* out, std::size_t ld);
};

// The int8 family's tables by level: scalar, avx512-vnni, and amx (batches of 16 or more samples
// on tiles, smaller ones on VNNI) where Linux grants this process the tile state (else amx uses
// the VNNI table). GLIDE_ISA below avx512-vnni forces scalar; GLIDE_AMX=0 keeps batches on VNNI.
const KernelDispatch<Int8Kernels>& int8_kernel_dispatch();
// The active level's table (glide::active_isa()).
const Int8Kernels& int8_kernels();
const Int8Kernels& int8_scalar_kernels();

}  // namespace glide::quant
