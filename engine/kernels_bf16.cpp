// The scalar bf16 reference kernels and the choice of the active table. Compiled with
// -ffp-contract=off: the Adam arithmetic must match the vector paths operation for operation.
#include "engine/kernels_bf16.h"

#include <cmath>

namespace glide::engine {

const Bf16Kernels& bf16_avx512_table();      // kernels_bf16_avx512.cpp
const Bf16Kernels& bf16_avx512bf16_table();  // kernels_bf16_avx512bf16.cpp

namespace {

inline float ld(const float* p, std::size_t i) {
  return p[i];
}
inline float ld(const bf16* p, std::size_t i) {
  return bf16_to_f32(p[i]);
}

void to_bf16(const float* x, bf16* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

void to_bf16_sr(const float* x, bf16* out, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = 0; i < n; ++i)
    out[i] = f32_to_bf16_sr(x[i], sr_noise(seed, static_cast<std::uint32_t>(i)));
}

void to_f32(const bf16* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(x[i]);
}

float dot_f32(const bf16* w, const float* x, std::size_t n) {
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

template <class WT, class XT>
void dot_rows(const WT* w, const XT* X, std::size_t stride, const std::uint32_t* rows,
              std::size_t count, std::size_t dim, float* out) {
  for (std::size_t k = 0; k < count; ++k) {
    const XT* x = X + rows[k] * stride;
    float s = 0;
    for (std::size_t i = 0; i < dim; ++i) s += ld(w, i) * ld(x, i);
    out[k] = s;
  }
}

template <class WT>
void backward_rows(const WT* w, const bf16* X, std::size_t x_stride, float* dX,
                   std::size_t dx_stride, const std::uint32_t* rows, const float* coef,
                   std::size_t count, std::size_t dim, float* gw) {
  for (std::size_t i = 0; i < dim; ++i) gw[i] = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const bf16* x = X + rows[k] * x_stride;
    float* dx = dX + rows[k] * dx_stride;
    for (std::size_t i = 0; i < dim; ++i) {
      gw[i] += coef[k] * ld(x, i);
      dx[i] += coef[k] * ld(w, i);
    }
  }
}

void outer_rows(const float* C, std::size_t ck, std::size_t cs, const float* W,
                std::size_t w_stride, std::size_t K, std::size_t n, std::size_t dim, float* dX,
                std::size_t dx_stride) {
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t i = 0; i < dim; ++i)
        dX[s * dx_stride + i] += C[k * ck + s * cs] * W[k * w_stride + i];
}

inline void st(float* p, std::size_t i, float x, std::uint32_t) {
  p[i] = x;
}
inline void st(bf16* p, std::size_t i, float x, std::uint32_t noise) {
  p[i] = f32_to_bf16_sr(x, noise);
}

template <class MT>
void adam(bf16* w, MT* m, MT* v, const float* g, std::size_t n, const AdamStep& s,
          std::uint32_t seed) {
  const float c1 = 1 - s.beta1, c2 = 1 - s.beta2;
  for (std::size_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = std::fma(s.beta1, ld(m, i), c1 * gi);
    const float vi = std::fma(s.beta2, ld(v, i), (c2 * gi) * gi);
    const float wi = ld(w, i) - (s.step * mi) / (std::sqrt(vi) + s.eps);
    const std::uint32_t d = adam_draw(seed, static_cast<std::uint32_t>(i));
    st(m, i, mi, adam_noise_m(d));
    st(v, i, vi, adam_noise_v(d));
    st(w, i, wi, adam_noise_w(d));
  }
}

}  // namespace

const Bf16Kernels& bf16_scalar_kernels() {
  static const Bf16Kernels k{"scalar",
                             to_bf16,
                             to_bf16_sr,
                             to_f32,
                             dot_f32,
                             dot_rows<bf16, bf16>,
                             dot_rows<float, bf16>,
                             dot_rows<bf16, float>,
                             backward_rows<bf16>,
                             backward_rows<float>,
                             outer_rows,
                             adam<bf16>,
                             adam<float>};
  return k;
}

const KernelDispatch<Bf16Kernels>& bf16_kernel_dispatch() {
  static const KernelDispatch<Bf16Kernels> dispatch{
      {Isa::kScalar, [] { return &bf16_scalar_kernels(); }},
      {Isa::kAvx512, [] { return &bf16_avx512_table(); }},
      {Isa::kAvx512Bf16, [] { return &bf16_avx512bf16_table(); }},
  };
  return dispatch;
}

const Bf16Kernels& bf16_kernels() {
  return bf16_kernel_dispatch().active();
}

}  // namespace glide::engine
