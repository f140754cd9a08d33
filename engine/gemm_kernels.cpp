// The fp32 gemm tables (over Bf16Kernels::outer_rows at the same level) and the dispatch.
#include "engine/gemm_kernels.h"

#include "common/cpu.h"
#include "common/error.h"
#include "engine/kernels_bf16.h"

namespace glide::engine {

const Bf16Kernels& bf16_scalar_kernels();  // kernels_bf16.cpp
const Bf16Kernels& bf16_avx512_table();    // kernels_bf16_avx512.cpp
const GemmKernels& gemm_amx_table();       // gemm_kernels_amx.cpp

namespace {

template <const GemmKernels& (*Self)()>
void pack_f32(const float* b, std::size_t bk, std::size_t bn, std::size_t k, std::size_t n,
              PackedB& out) {
  out.packer = &Self();
  out.k = out.k_pad = k;
  out.n = out.n_pad = n;
  if (bn == 1) {  // rows contiguous: read in place
    out.rows = b;
    out.ld = bk;
    return;
  }
  out.f32.resize(k * n);
  for (std::size_t p = 0; p < k; ++p)
    for (std::size_t j = 0; j < n; ++j) out.f32[p * n + j] = b[p * bk + j * bn];
  out.rows = out.f32.data();
  out.ld = n;
}

template <const GemmKernels& (*Self)(), const Bf16Kernels& (*Outer)()>
void gemm_f32(const float* a, std::size_t ai, std::size_t ak, std::size_t m, const PackedB& b,
              float* c, std::size_t ldc) {
  if (b.packer != &Self()) fail("gemm: the right-hand operand was packed for another kernel table");
  Outer().outer_rows(a, ak, ai, b.rows, b.ld, b.k, m, b.n, c, ldc);
}

const GemmKernels& gemm_scalar_table();
const GemmKernels& gemm_avx512_table();

const GemmKernels& gemm_scalar_table() {
  static const GemmKernels k{"scalar", pack_f32<gemm_scalar_table>,
                             gemm_f32<gemm_scalar_table, bf16_scalar_kernels>};
  return k;
}

const GemmKernels& gemm_avx512_table() {
  static const GemmKernels k{"avx512", pack_f32<gemm_avx512_table>,
                             gemm_f32<gemm_avx512_table, bf16_avx512_table>};
  return k;
}

}  // namespace

const KernelDispatch<GemmKernels>& gemm_kernel_dispatch() {
  static const KernelDispatch<GemmKernels> dispatch{
      {Isa::kScalar, [] { return &gemm_scalar_table(); }},
      {Isa::kAvx512, [] { return &gemm_avx512_table(); }},
      {Isa::kAmx, [] { return amx_tile_permission() ? &gemm_amx_table() : nullptr; }},
  };
  return dispatch;
}

const GemmKernels& gemm_kernels() {
  return gemm_kernel_dispatch().active();
}

}  // namespace glide::engine
