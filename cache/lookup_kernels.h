// The integer dots of a compact centroid lookup (learned_cache.h): int8 rows against the input
// quantised to int16, exact int32 sums. Three paths giving identical results: a plain scalar
// reference, SSE2 (pmaddwd, 8 products per instruction; the baseline x86-64 path) and
// AVX512-VNNI (vpdpwssd, 32 products per instruction), chosen at run time.
#pragma once
#include <cstddef>
#include <cstdint>

namespace glide::cache {

struct LookupKernels {
  const char* name;  // "scalar", "sse2" or "avx512-vnni"
  // out[r] = sum_{i < n} rows[r * stride + i] * x[i] for r < count; n a multiple of 16.
  // |sum| <= 127 * 1023 * n fits int32 for any layer width glide allows.
  void (*dots)(const std::int8_t* rows, std::size_t count, std::size_t stride,
               const std::int16_t* x, std::size_t n, std::int32_t* out);
};

// VNNI when the CPU has it and glide::active_isa() is AVX-512 (GLIDE_ISA=avx2 or scalar turns it
// off), else SSE2 (scalar on non-x86 builds).
const LookupKernels& lookup_kernels();
const LookupKernels& lookup_scalar_kernels();
const LookupKernels& lookup_sse2_kernels();  // the scalar table where SSE2 is not compiled in
// Null when the CPU lacks AVX512-VNNI.
const LookupKernels* lookup_vnni_kernels();

}  // namespace glide::cache
