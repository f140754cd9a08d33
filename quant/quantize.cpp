#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"

namespace glide::quant {

Granularity parse_granularity(const std::string& s) {
  if (s == "row") return Granularity::kRow;
  if (s == "tensor") return Granularity::kTensor;
  fail("granularity must be row or tensor, got '" + s + "'");
}

const char* granularity_name(Granularity g) {
  return g == Granularity::kRow ? "row" : "tensor";
}

namespace {

float max_abs(const float* x, std::size_t n) {
  float m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

void quantize_row(const float* w, std::size_t cols, float scale, std::int8_t* q,
                  std::size_t q_stride) {
  std::memset(q, 0, q_stride);
  if (scale == 0) return;
  const float inv = 1.0f / scale;
  for (std::size_t c = 0; c < cols; ++c) {
    // nearbyint: round half to even in the default rounding mode.
    const float v = std::nearbyint(w[c] * inv);
    q[c] = static_cast<std::int8_t>(std::clamp(v, -127.0f, 127.0f));
  }
}

}  // namespace

void quantize_rows_s8(const float* W, std::size_t rows, std::size_t cols, std::size_t w_stride,
                      Granularity g, std::int8_t* Q, std::size_t q_stride, float* scales) {
  float tensor_max = 0;
  if (g == Granularity::kTensor)
    for (std::size_t r = 0; r < rows; ++r)
      tensor_max = std::max(tensor_max, max_abs(W + r * w_stride, cols));
  for (std::size_t r = 0; r < rows; ++r) {
    const float m = g == Granularity::kTensor ? tensor_max : max_abs(W + r * w_stride, cols);
    scales[r] = m / 127.0f;
    quantize_row(W + r * w_stride, cols, scales[r], Q + r * q_stride, q_stride);
  }
}

void dequantize_rows_s8(const std::int8_t* Q, std::size_t q_stride, const float* scales,
                        std::size_t rows, std::size_t cols, float* W, std::size_t w_stride) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c)
      W[r * w_stride + c] = static_cast<float>(Q[r * q_stride + c]) * scales[r];
}

float quantize_u8(const float* x, std::size_t n, std::uint8_t* q) {
  float m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  if (!(m > 0)) {
    std::memset(q, 0, n);
    return 0;
  }
  const float t = m / 255.0f, inv = 1.0f / t;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = std::nearbyint(std::max(x[i], 0.0f) * inv);
    q[i] = static_cast<std::uint8_t>(std::min(v, 255.0f));
  }
  return t;
}

}  // namespace glide::quant
