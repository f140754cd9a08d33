// The scalar reference for the int8 kernels and the family's tables by level.
#include "quant/int8_kernels.h"

namespace glide::quant {

const Int8Kernels& int8_vnni_table();  // int8_kernels_vnni.cpp
const Int8Kernels& int8_amx_table();   // int8_kernels_amx.cpp

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

const KernelDispatch<Int8Kernels>& int8_kernel_dispatch() {
  static const KernelDispatch<Int8Kernels> dispatch{
      {Isa::kScalar, [] { return &int8_scalar_kernels(); }},
      {Isa::kAvx512Vnni, [] { return &int8_vnni_table(); }},
      {Isa::kAmx, [] { return amx_tile_permission() ? &int8_amx_table() : nullptr; }},
  };
  return dispatch;
}

const Int8Kernels& int8_kernels() {
  return int8_kernel_dispatch().active();
}

}  // namespace glide::quant
