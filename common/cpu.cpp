#include "common/cpu.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace glide {

namespace {

#if defined(__x86_64__) || defined(__i386__)
CpuFeatures detect() {
  CpuFeatures f;
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
  // g++ 12 does not know "avx512bf16"/"amx" for __builtin_cpu_supports: ask cpuid directly.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(1));
  f.avx512_bf16 = f.avx512 && (eax & (1u << 5));
  __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(0));
  f.amx = (edx & (1u << 22)) && (edx & (1u << 24)) && (edx & (1u << 25));
  return f;
}
#else
CpuFeatures detect() {
  return {};
}
#endif

// The highest level whose features, and those of every level below it, the CPU has.
Isa detect_best(const CpuFeatures& f) {
  if (!f.avx2) return Isa::kScalar;
  if (!f.avx512) return Isa::kAvx2;
  if (!f.avx512_vnni) return Isa::kAvx512;
  if (!f.avx512_bf16) return Isa::kAvx512Vnni;
  if (!f.amx) return Isa::kAvx512Bf16;
  return Isa::kAmx;
}

Isa lower(Isa a, Isa b) {
  return a < b ? a : b;
}

Isa initial_isa() {
  Isa isa = best_isa();
  if (const char* env = std::getenv("GLIDE_ISA")) {
    if (const std::optional<Isa> wanted = parse_isa(env))
      isa = lower(isa, *wanted);
    else
      std::fprintf(stderr,
                   "glide: GLIDE_ISA=%s is not a SIMD level (scalar, avx2, avx512, avx512-vnni, "
                   "avx512-bf16 or amx); ignored\n",
                   env);
  }
  if (const char* env = std::getenv("GLIDE_AMX"); env && std::strcmp(env, "0") == 0)
    isa = lower(isa, Isa::kAvx512Bf16);
  return isa;
}

std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

}  // namespace

bool amx_tile_permission() {
#if defined(__linux__) && defined(__x86_64__)
  static const bool granted = [] {
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return granted;
#else
  return false;
#endif
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

Isa best_isa() {
  static const Isa best = detect_best(cpu_features());
  return best;
}

bool isa_supported(Isa isa) {
  return isa <= best_isa();
}

Isa active_isa() {
  return static_cast<Isa>(isa_slot().load(std::memory_order_relaxed));
}

bool set_active_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  isa_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx512Vnni:
      return "avx512-vnni";
    case Isa::kAvx512Bf16:
      return "avx512-bf16";
    case Isa::kAmx:
      return "amx";
    default:
      return "scalar";
  }
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa isa : kAllIsas)
    if (name == isa_name(isa)) return isa;
  return std::nullopt;
}

std::string cpu_summary() {
  std::string s = std::string("isa=") + isa_name(active_isa());
  if (active_isa() != best_isa()) s += std::string(" (cpu: ") + isa_name(best_isa()) + ")";
  return s;
}

}  // namespace glide
