// Dense fp32 matrix products, C += A B, for the output-layer rows that every sample of a batch
// activates (SharedRows in output_ops.cpp: z = W H^T, dH += C^T W, gw = C H, ~3,400 x 256 x 128
// each at amazon670k). B is packed once per product (pack_b) and reused by every block of A rows
// (gemm), which threads split between them.
//
// Levels: the scalar and avx512 tables run the fp32 products of Bf16Kernels::outer_rows. The amx
// table runs them on AMX tiles in bf16 with each fp32 operand split in two, x = hi + lo (hi its
// bf16 rounding, lo the rounding of the rest), and C += Ahi Bhi + Ahi Blo + Alo Bhi: 16 bits of
// each operand's mantissa instead of 24, so each term a b is within ~3 x 2^-16 of its fp32 value
// (the dropped Alo Blo and the two residuals), sums in fp32. Three tile products still run ~3x
// faster than fp32 FMAs on one core, and a result depends only on its row and column (blocks of
// rows never change another row's sums), so it is the same for any thread count.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/simd_dispatch.h"

namespace glide::engine {

struct GemmKernels;

// The right-hand operand of gemm, packed by one table's pack_b for that table's gemm.
struct PackedB {
  const GemmKernels* packer = nullptr;
  std::size_t k = 0, n = 0;  // B is k x n
  std::size_t k_pad = 0, n_pad = 0;
  // fp32 levels: B itself where its rows are contiguous (bn = 1), else a row-major copy in f32;
  // row p at rows + p * ld.
  const float* rows = nullptr;
  std::size_t ld = 0;
  std::vector<float> f32;
  std::vector<std::uint16_t> hi, lo;  // amx: bf16 pairs of rows (k_pad / 2 x n_pad x 2)
};

struct GemmKernels {
  const char* name;  // "scalar", "avx512" or "amx-bf16"
  // Packs B, element (p, j) at b[p * bk + j * bn] for p < k, j < n. The fp32 tables may keep a
  // pointer to b instead of a copy: b must stay unchanged until the gemm calls are done.
  void (*pack_b)(const float* b, std::size_t bk, std::size_t bn, std::size_t k, std::size_t n,
                 PackedB& out);
  // c[i * ldc + j] += sum_p a[i * ai + p * ak] B(p, j) for i < m, j < B.n, p < B.k, with B
  // packed by this table (glide::Error otherwise).
  void (*gemm)(const float* a, std::size_t ai, std::size_t ak, std::size_t m, const PackedB& b,
               float* c, std::size_t ldc);
};

const KernelDispatch<GemmKernels>& gemm_kernel_dispatch();
// The active level's table (glide::active_isa()).
const GemmKernels& gemm_kernels();

}  // namespace glide::engine
