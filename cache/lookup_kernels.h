// The integer dots of a compact centroid lookup (learned_cache.h): int8 rows against the input
// quantised to int16, exact int32 sums. Three paths giving identical results: a plain scalar
// reference, SSE2 (pmaddwd, 8 products per instruction; the baseline x86-64 path) and
// AVX512-VNNI (vpdpwssd, 32 products per instruction), chosen by the common dispatch.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/simd_dispatch.h"

namespace glide::cache {

struct LookupKernels {
  const char* name;  // "scalar", "sse2" or "avx512-vnni"
  // out[r] = sum_{i < n} rows[r * stride + i] * x[i] for r < count; n a multiple of 16.
  // |sum| <= 127 * 1023 * n fits int32 for any layer width glide allows.
  void (*dots)(const std::int8_t* rows, std::size_t count, std::size_t stride,
               const std::int16_t* x, std::size_t n, std::int32_t* out);
};

// The lookup family's tables by level: scalar, avx2 (the SSE2 kernel: every CPU with AVX2 has
// SSE2, and pmaddwd on 128 bits is what it needs; scalar on non-x86 builds) and avx512-vnni.
const KernelDispatch<LookupKernels>& lookup_kernel_dispatch();
// The active level's table (glide::active_isa()).
const LookupKernels& lookup_kernels();
const LookupKernels& lookup_scalar_kernels();

}  // namespace glide::cache
