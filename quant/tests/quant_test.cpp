// Quantization error bounds and the scalar int8 kernels on hand-worked values (every other level's
// table is tested against them in tests/kernel_levels_test.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/error.h"
#include "quant/int8_kernels.h"
#include "quant/quantize.h"

using namespace glide;
using namespace glide::quant;

namespace {

std::vector<float> random_floats(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

}  // namespace

TEST_CASE("per-row s8 quantization: |w - deq(q(w))| <= scale/2 per element") {
  const std::size_t rows = 37, cols = 75, ws = 80, qs = 128;
  std::vector<float> W = random_floats(rows * ws, -1, 1, 1);
  // Rows of very different magnitudes, one all-zero row, one with a single huge value.
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) W[r * ws + c] *= std::pow(10.0f, float(r % 7) - 3);
  for (std::size_t c = 0; c < cols; ++c) W[5 * ws + c] = 0;
  W[6 * ws + 3] = 1000;
  for (Granularity g : {Granularity::kRow, Granularity::kTensor}) {
    CAPTURE(granularity_name(g));
    std::vector<std::int8_t> Q(rows * qs, 99);
    std::vector<float> scales(rows), D(rows * ws, -5);
    quantize_rows_s8(W.data(), rows, cols, ws, g, Q.data(), qs, scales.data());
    dequantize_rows_s8(Q.data(), qs, scales.data(), rows, cols, D.data(), ws);
    for (std::size_t r = 0; r < rows; ++r) {
      float m = 0;
      for (std::size_t c = 0; c < cols; ++c) m = std::max(m, std::fabs(W[r * ws + c]));
      if (g == Granularity::kRow) CHECK(scales[r] == doctest::Approx(m / 127).epsilon(1e-6));
      if (g == Granularity::kTensor) CHECK(scales[r] == scales[0]);
      for (std::size_t c = 0; c < cols; ++c) {
        const float err = std::fabs(W[r * ws + c] - D[r * ws + c]);
        REQUIRE(err <= scales[r] * 0.5f * (1 + 1e-5f) + 1e-30f);
        CHECK(Q[r * qs + c] >= -127);
      }
      for (std::size_t c = cols; c < qs; ++c) CHECK(Q[r * qs + c] == 0);  // padding zeroed
    }
    CHECK(scales[5] == (g == Granularity::kRow ? 0.0f : scales[0]));
  }
  // Row granularity is far more precise on rows of small magnitude.
  std::vector<std::int8_t> Q(rows * qs);
  std::vector<float> s_row(rows), s_tensor(rows);
  quantize_rows_s8(W.data(), rows, cols, ws, Granularity::kRow, Q.data(), qs, s_row.data());
  quantize_rows_s8(W.data(), rows, cols, ws, Granularity::kTensor, Q.data(), qs, s_tensor.data());
  CHECK(s_row[0] < 1e-4f * s_tensor[0]);
  CHECK_THROWS_AS(parse_granularity("channel"), Error);
}

TEST_CASE("u8 activation quantization: zero point 0, error <= scale/2, negatives clamp to 0") {
  std::vector<float> x = random_floats(200, 0, 3, 2);
  x[7] = 0;
  x[8] = -1;  // not a ReLU output: clamps to 0
  std::vector<std::uint8_t> q(x.size());
  const float t = quantize_u8(x.data(), x.size(), q.data());
  float m = 0;
  for (float v : x) m = std::max(m, v);
  CHECK(t == doctest::Approx(m / 255).epsilon(1e-6));
  CHECK(q[7] == 0);
  CHECK(q[8] == 0);
  bool saw_255 = false;
  for (std::size_t i = 0; i < x.size(); ++i) {
    saw_255 |= q[i] == 255;
    if (x[i] >= 0) REQUIRE(std::fabs(x[i] - q[i] * t) <= t * 0.5f * (1 + 1e-5f));
  }
  CHECK(saw_255);
  std::vector<float> zeros(10, 0.0f);
  CHECK(quantize_u8(zeros.data(), zeros.size(), q.data()) == 0.0f);
  CHECK(q[0] == 0);
}

TEST_CASE("int8 scalar reference on hand-worked values") {
  const std::uint8_t a[5] = {1, 2, 255, 0, 10};
  const std::int8_t w[5] = {3, -4, -127, 100, 127};
  const Int8Kernels& k = int8_scalar_kernels();
  CHECK(k.dot_u8s8(a, w, 5) == 3 - 8 - 255 * 127 + 0 + 1270);
  float out[1];
  const float ws = 0.5f, xs = 0.25f, b = 1.0f;
  k.gemm_u8s8_f32(w, 5, &ws, &b, 1, a, 5, &xs, 1, 5, out, 1);
  CHECK(out[0] == static_cast<float>(3 - 8 - 255 * 127 + 1270) * 0.125f + 1.0f);
}
