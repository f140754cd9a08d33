// Run-time CPU detection: one ordered set of SIMD levels, detected once, so one binary runs on any
// x86-64 and every kernel family (common/simd_dispatch.h) uses the best level the CPU has.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace glide {

// The SIMD levels the kernels are written for, lowest first. Each level needs everything the
// levels below it need, so a CPU supports every level up to its best one (every CPU with
// AVX512_BF16 or AMX also has VNNI). A kernel family has tables at some of these levels only.
enum class Isa {
  kScalar = 0,  // baseline x86-64 (SSE2): the reference kernels
  kAvx2,        // AVX2 and FMA
  kAvx512,      // AVX-512 F, BW, DQ and VL
  kAvx512Vnni,  // plus AVX512_VNNI (int8 / int16 dot products)
  kAvx512Bf16,  // plus AVX512_BF16 (vdpbf16ps)
  kAmx,         // plus AMX-TILE, AMX-BF16 and AMX-INT8
};
inline constexpr int kIsaCount = 6;
inline constexpr Isa kAllIsas[kIsaCount] = {Isa::kScalar,     Isa::kAvx2,       Isa::kAvx512,
                                            Isa::kAvx512Vnni, Isa::kAvx512Bf16, Isa::kAmx};

struct CpuFeatures {
  bool avx2 = false;    // with FMA
  bool avx512 = false;  // F, BW, DQ, VL
  bool avx512_bf16 = false;
  bool avx512_vnni = false;
  bool amx = false;  // AMX-TILE, AMX-BF16, AMX-INT8
};

// What this CPU supports (detected once).
const CpuFeatures& cpu_features();

// The best level this CPU supports.
Isa best_isa();
bool isa_supported(Isa isa);

// Linux keeps the 8 KB AMX tile state off until a process asks (arch_prctl ARCH_REQ_XCOMP_PERM
// for XFEATURE_XTILEDATA): asks once, and says whether it was granted. Only for a CPU with AMX.
bool amx_tile_permission();

// The level kernels use: the best supported one, lowered (never raised) by the environment:
//   GLIDE_ISA=scalar|avx2|avx512|avx512-vnni|avx512-bf16|amx  at most that level;
//   GLIDE_AMX=0  below amx (avx512-bf16 at most): int8 batches on VNNI instead of tiles.
// For testing and benchmarking; an unknown GLIDE_ISA value is reported on stderr and ignored.
Isa active_isa();

// Overrides the choice of active_isa() for this process (tests compare every level).
// Returns false, and changes nothing, when the CPU does not support `isa`.
bool set_active_isa(Isa isa);

// "scalar", "avx2", "avx512", "avx512-vnni", "avx512-bf16" or "amx", and back.
const char* isa_name(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);

// "isa=<active level>", and the CPU's best level where the active one is lower.
std::string cpu_summary();

}  // namespace glide
