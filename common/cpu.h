// Run-time CPU feature detection: kernels are chosen once, from what the CPU supports, so one
// binary runs on any x86-64 and uses AVX-512 where present.
#pragma once
#include <string>

namespace glide {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;    // with FMA
  bool avx512 = false;  // F, BW, DQ, VL
  bool avx512_bf16 = false;
  bool avx512_vnni = false;
  bool amx = false;  // AMX-TILE, AMX-BF16, AMX-INT8
};

// What this CPU supports (detected once).
const CpuFeatures& cpu_features();

// The ISA kernels use: the best supported one, lowered by the environment variable GLIDE_ISA
// (scalar|avx2|avx512) for testing and benchmarking. Never raised above what the CPU supports.
Isa active_isa();

// Overrides the choice of active_isa() for this process (tests compare every path).
// Returns false, and changes nothing, when the CPU does not support `isa`.
bool set_active_isa(Isa isa);

bool isa_supported(Isa isa);
const char* isa_name(Isa isa);
std::string cpu_summary();

}  // namespace glide
