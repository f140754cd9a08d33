// The scalar reference for the int8 kernels and the run-time choice.
#include "quant/int8_kernels.h"

#include "common/cpu.h"

#include <cstdlib>
#include <string>

namespace glide::quant {

const Int8Kernels& int8_vnni_table();  // int8_kernels_vnni.cpp
const Int8Kernels& int8_amx_table();   // int8_kernels_amx.cpp
bool amx_tile_permission();            // int8_kernels_amx.cpp

namespace {

std::int32_t dot_u8s8(const std::uint8_t* a, const std::int8_t* w, std::size_t n) {
  std::int32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<std::int32_t>(a[i]) * w[i];
  return s;
}

void gemm_u8s8_f32(const std::int8_t* W, std::size_t w_stride, const float* w_scale,
                   const float* bias, std::size_t rows, const std::uint8_t* X, std::size_t x_stride,
                   const float* x_scale, std::size_t samples, std::size_t n, float* out,
                   std::size_t ld) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t s = 0; s < samples; ++s) {
      const std::int32_t acc = dot_u8s8(X + s * x_stride, W + r * w_stride, n);
      const float scale = w_scale[r] * x_scale[s];
      out[s * ld + r] = static_cast<float>(acc) * scale + bias[r];
    }
}

}  // namespace

const Int8Kernels& int8_scalar_kernels() {
  static const Int8Kernels k{"scalar", dot_u8s8, gemm_u8s8_f32};
  return k;
}

const Int8Kernels* int8_vnni_kernels() {
  const CpuFeatures& f = cpu_features();
  return f.avx512 && f.avx512_vnni ? &int8_vnni_table() : nullptr;
}

const Int8Kernels* int8_amx_kernels() {
  return int8_vnni_kernels() && cpu_features().amx && amx_tile_permission() ? &int8_amx_table()
                                                                            : nullptr;
}

const Int8Kernels& int8_kernels() {
  // GLIDE_AMX=0 keeps batches on VNNI (to compare, or where tiles misbehave).
  static const bool amx_allowed = [] {
    const char* e = std::getenv("GLIDE_AMX");
    return !(e && std::string(e) == "0");
  }();
  if (const Int8Kernels* a = int8_amx_kernels(); a && amx_allowed && active_isa() == Isa::kAvx512)
    return *a;
  const Int8Kernels* v = int8_vnni_kernels();
  return v && active_isa() == Isa::kAvx512 ? *v : int8_scalar_kernels();
}

}  // namespace glide::quant
