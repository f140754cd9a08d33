// Quantization error bounds and the int8 kernels against their scalar reference (exact).
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/cpu.h"
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

std::vector<const Int8Kernels*> int8_paths() {
  std::vector<const Int8Kernels*> out{&int8_scalar_kernels()};
  if (const Int8Kernels* v = int8_vnni_kernels())
    out.push_back(v);
  else
    MESSAGE("CPU lacks AVX512-VNNI: only the scalar int8 kernels are tested here");
  if (const Int8Kernels* a = int8_amx_kernels())
    out.push_back(a);
  else
    MESSAGE("CPU lacks AMX-INT8 (or the tile state was refused): AMX kernels not tested here");
  return out;
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

TEST_CASE("every int8 kernel equals the scalar reference exactly") {
  const Int8Kernels& ref = int8_scalar_kernels();
  std::mt19937 g(3);
  for (const Int8Kernels* k : int8_paths()) {
    CAPTURE(k->name);
    for (std::size_t n : {1, 3, 63, 64, 65, 127, 128, 129, 200, 256, 1000}) {
      CAPTURE(n);
      std::vector<std::uint8_t> a(n);
      std::vector<std::int8_t> w(n);
      for (auto& v : a) v = static_cast<std::uint8_t>(g() & 255);
      for (auto& v : w) v = static_cast<std::int8_t>(static_cast<int>(g() % 255) - 127);
      CHECK(k->dot_u8s8(a.data(), w.data(), n) == ref.dot_u8s8(a.data(), w.data(), n));
      // Extremes: every product 255 * -127 (the largest magnitude).
      std::vector<std::uint8_t> amax(n, 255);
      std::vector<std::int8_t> wmin(n, -127);
      CHECK(k->dot_u8s8(amax.data(), wmin.data(), n) == -255 * 127 * static_cast<int>(n));
    }
    for (std::size_t rows : {1, 4, 7, 13, 16, 37}) {
      for (std::size_t samples : {1, 4, 6, 9, 16, 35}) {  // AMX: tiles from 16 samples on
        for (std::size_t n : {5, 64, 128, 130, 200}) {
          CAPTURE(rows);
          CAPTURE(samples);
          CAPTURE(n);
          const std::size_t wstr = n + 3, xstr = n + 5, ld = rows + 2;
          std::vector<std::int8_t> W(rows * wstr);
          std::vector<std::uint8_t> X(samples * xstr);
          for (auto& v : W) v = static_cast<std::int8_t>(static_cast<int>(g() % 255) - 127);
          for (auto& v : X) v = static_cast<std::uint8_t>(g() & 255);
          const std::vector<float> wsc = random_floats(rows, 1e-4f, 1e-2f, 5);
          const std::vector<float> bias = random_floats(rows, -1, 1, 6);
          const std::vector<float> xsc = random_floats(samples, 1e-3f, 1e-1f, 7);
          std::vector<float> o1(samples * ld, -7), o2(samples * ld, -7);
          k->gemm_u8s8_f32(W.data(), wstr, wsc.data(), bias.data(), rows, X.data(), xstr,
                           xsc.data(), samples, n, o1.data(), ld);
          ref.gemm_u8s8_f32(W.data(), wstr, wsc.data(), bias.data(), rows, X.data(), xstr,
                            xsc.data(), samples, n, o2.data(), ld);
          CHECK(o1 == o2);  // bit for bit, and the padding columns untouched
          // With unit scales and zero bias the outputs are the integer sums themselves.
          const std::vector<float> ones_r(rows, 1.0f), zeros_r(rows, 0.0f), ones_s(samples, 1.0f);
          k->gemm_u8s8_f32(W.data(), wstr, ones_r.data(), zeros_r.data(), rows, X.data(), xstr,
                           ones_s.data(), samples, n, o1.data(), ld);
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t s = 0; s < samples; ++s)
              REQUIRE(o1[s * ld + r] == static_cast<float>(ref.dot_u8s8(X.data() + s * xstr,
                                                                        W.data() + r * wstr, n)));
        }
      }
    }
  }
}

TEST_CASE("int8_kernels() follows the active ISA") {
  const Isa before = active_isa();
  REQUIRE(set_active_isa(Isa::kScalar));
  CHECK(&int8_kernels() == &int8_scalar_kernels());
  set_active_isa(before);
  if (int8_vnni_kernels() && before == Isa::kAvx512) {
    const char* e = std::getenv("GLIDE_AMX");
    const bool amx = int8_amx_kernels() && !(e && std::string(e) == "0");
    CHECK(&int8_kernels() == (amx ? int8_amx_kernels() : int8_vnni_kernels()));
  }
}
