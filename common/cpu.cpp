#include "common/cpu.h"

#include <atomic>
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

Isa best_isa(const CpuFeatures& f) {
  if (f.avx512) return Isa::kAvx512;
  if (f.avx2) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa initial_isa() {
  Isa isa = best_isa(cpu_features());
  if (const char* env = std::getenv("GLIDE_ISA")) {
    Isa wanted = isa;
    if (std::strcmp(env, "scalar") == 0) wanted = Isa::kScalar;
    if (std::strcmp(env, "avx2") == 0) wanted = Isa::kAvx2;
    if (std::strcmp(env, "avx512") == 0) wanted = Isa::kAvx512;
    if (static_cast<int>(wanted) < static_cast<int>(isa)) isa = wanted;
  }
  return isa;
}

std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa) {
  return static_cast<int>(isa) <= static_cast<int>(best_isa(cpu_features()));
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
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "scalar";
  }
}

std::string cpu_summary() {
  const CpuFeatures& f = cpu_features();
  std::string s = std::string("isa=") + isa_name(active_isa());
  if (f.avx512_bf16) s += " bf16";
  if (f.avx512_vnni) s += " vnni";
  if (f.amx) s += " amx";
  return s;
}

}  // namespace glide
