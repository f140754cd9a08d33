// The bf16 kernels: conversions exact, stochastic rounding unbiased, the scalar reference against
// double-precision sums, bf16 Adam tracking fp32 Adam. Every other level's table is tested
// against the scalar one in tests/kernel_levels_test.cpp.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "common/rng.h"
#include "engine/kernels_bf16.h"
#include "engine/tests/random_vectors.h"

using namespace glide;
using namespace glide::engine;
using glide::engine::testing::randoms;

namespace {

std::vector<bf16> to_bf16(const std::vector<float>& x) {
  std::vector<bf16> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = f32_to_bf16(x[i]);
  return out;
}

float bits_to_f32(std::uint32_t b) {
  return std::bit_cast<float>(b);
}

}  // namespace

TEST_CASE("bf16 conversions: round to nearest even, NaN and infinities") {
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(f32_to_bf16(bits_to_f32(0x3F808000)) == 0x3F80);  // tie: to even (down)
  CHECK(f32_to_bf16(bits_to_f32(0x3F818000)) == 0x3F82);  // tie: to even (up)
  CHECK(f32_to_bf16(bits_to_f32(0x3F808001)) == 0x3F81);  // above the tie: up
  CHECK(f32_to_bf16(bits_to_f32(0x3F807FFF)) == 0x3F80);  // below the tie: down
  CHECK(f32_to_bf16(-2.5f) == 0xC020);
  CHECK(f32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits in the low half only must not become infinity.
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(bits_to_f32(0x7F800001)))));
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16_sr(bits_to_f32(0x7F800001), 0xFFFF))));
  CHECK(f32_to_bf16_sr(std::numeric_limits<float>::infinity(), 0xFFFF) == 0x7F80);
  // Every bf16 value converts to fp32 and back unchanged, on every rounding.
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_f32(static_cast<bf16>(h));
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_bf16(f) == h);
    REQUIRE(f32_to_bf16_sr(f, 0xFFFF) == h);
  }
  // Round to nearest: the error is at most half a gap (2^-8 relative).
  Rng rng(1);
  for (float x : randoms(10000, rng, -100, 100)) {
    const float r = bf16_to_f32(f32_to_bf16(x));
    CHECK(std::fabs(r - x) <= std::fabs(x) * (1.0f / 256));
  }
}

TEST_CASE("stochastic rounding is unbiased and rounds to a neighbour") {
  // x between two bf16 neighbours lo < x < hi at fraction p of the gap: rounds to one of them,
  // up with probability p, so the mean of N roundings is x within a few standard errors.
  const bf16 lo_bits = f32_to_bf16(1.5f);
  const float lo = bf16_to_f32(lo_bits), hi = bf16_to_f32(lo_bits + 1), gap = hi - lo;
  const std::size_t N = 200000;
  for (double p : {0.01, 0.25, 0.5, 0.7, 0.93}) {
    CAPTURE(p);
    const float x = lo + static_cast<float>(p) * gap;
    double sum = 0;
    std::size_t ups = 0;
    for (std::size_t i = 0; i < N; ++i) {
      const float r = bf16_to_f32(f32_to_bf16_sr(x, sr_noise(sr_seed(i, 7), 3)));
      REQUIRE((r == lo || r == hi));
      ups += r == hi;
      sum += r;
    }
    const double sigma = std::sqrt(p * (1 - p) / N);  // of the fraction rounded up
    CHECK(std::fabs(static_cast<double>(ups) / N - p) < 5 * sigma);
    CHECK(std::fabs(sum / N - x) < 5 * sigma * gap + 1e-9);
  }
  // Within one row (noise over element indices) too, and a negative value.
  std::vector<float> x(100000, -lo - 0.3f * gap);
  std::vector<bf16> out(x.size());
  bf16_kernels().to_bf16_sr(x.data(), out.data(), x.size(), 99);
  double sum = 0;
  for (bf16 h : out) sum += bf16_to_f32(h);
  const double sigma = std::sqrt(0.3 * 0.7 / x.size());
  CHECK(std::fabs(sum / x.size() - x[0]) < 5 * sigma * gap);
  // Accumulating updates far below half a gap: round to nearest loses every one of them,
  // stochastic rounding keeps their sum in expectation.
  bf16 rne = f32_to_bf16(1.0f), sr = rne;
  for (std::uint32_t t = 0; t < 10000; ++t) {
    rne = f32_to_bf16(bf16_to_f32(rne) + 1e-4f);
    sr = f32_to_bf16_sr(bf16_to_f32(sr) + 1e-4f, sr_noise(sr_seed(0, t), 0));
  }
  CHECK(bf16_to_f32(rne) == 1.0f);
  CHECK(bf16_to_f32(sr) == doctest::Approx(2.0f).epsilon(0.05));
}

TEST_CASE("the scalar bf16 dot product is the fp32 sum of the expanded values") {
  const Bf16Kernels& ref = bf16_scalar_kernels();
  Rng rng(4);
  for (std::size_t dim : {1u, 7u, 16u, 33u, 64u, 128u, 200u, 300u}) {
    CAPTURE(dim);
    const std::size_t B = 13, stride = padded_bf16(dim);
    const auto wf = randoms(dim, rng);
    const auto w = to_bf16(wf);
    const auto Xf = randoms(B * stride, rng, 0, 2);
    const auto X = to_bf16(Xf);
    // Within fp32 rounding of the sum of |w x|, against a double-precision sum.
    float s = 0;
    double exact = 0;
    for (std::size_t i = 0; i < dim; ++i) {
      s += std::fabs(wf[i] * Xf[3 * stride + i]);
      exact += double{bf16_to_f32(w[i])} * bf16_to_f32(X[3 * stride + i]);
    }
    const std::uint32_t row = 3;
    float out = 0;
    ref.dot_rows_bb(w.data(), X.data(), stride, &row, 1, dim, &out);
    CHECK(std::fabs(out - exact) <= 2e-6f * s + 1e-7f);
  }
}

TEST_CASE("bf16 Adam (scalar and the active level's) tracks fp32 Adam") {
  for (const Bf16Kernels* k : {&bf16_scalar_kernels(), &bf16_kernels()}) {
    const std::string kname = k->name;
    CAPTURE(kname);
    for (std::size_t n : {1u, 15u, 16u, 128u, 333u}) {
      CAPTURE(n);
      Rng rng(5);
      auto w1 = to_bf16(randoms(n, rng));
      std::vector<bf16> m1(n, 0), v1(n, 0);
      std::vector<float> wf(n), mf(n, 0), vf(n, 0);
      for (std::size_t i = 0; i < n; ++i) wf[i] = bf16_to_f32(w1[i]);
      const Kernels& f32 = scalar_kernels();
      for (std::uint64_t t = 1; t <= 20; ++t) {
        const auto g = randoms(n, rng);
        const AdamStep s = AdamStep::at(1e-3f, 0.9f, 0.999f, 1e-8f, t);
        k->adam_bf16(w1.data(), m1.data(), v1.data(), g.data(), n, s, sr_seed(7, t));
        f32.adam(wf.data(), mf.data(), vf.data(), g.data(), n, s);
      }
      // bf16 storage with stochastic rounding tracks the fp32 optimizer: over the row, the
      // differences are small next to the values (each rounding errs by at most one gap,
      // 2^-7 relative, and the errors do not pile up in one direction).
      if (n < 128) continue;
      auto rms_ratio = [&](const std::vector<bf16>& a, const std::vector<float>& b) {
        double d2 = 0, b2 = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const double d = bf16_to_f32(a[i]) - b[i];
          d2 += d * d;
          b2 += double{b[i]} * b[i];
        }
        return std::sqrt(d2 / b2);
      };
      const double rw = rms_ratio(w1, wf), rm = rms_ratio(m1, mf), rv = rms_ratio(v1, vf);
      MESSAGE("relative RMS difference to fp32 Adam after 20 steps: w " << rw << ", m " << rm
                                                                        << ", v " << rv);
      CHECK(rw < 0.02);
      CHECK(rm < 0.03);
      CHECK(rv < 0.03);
      double mean = 0;
      for (std::size_t i = 0; i < n; ++i) mean += bf16_to_f32(w1[i]) - wf[i];
      CHECK(std::fabs(mean / n) < 2e-3);
    }
  }
}

TEST_CASE("the three noises of a bf16 Adam update are each unbiased") {
  const bf16 lo_bits = f32_to_bf16(1.5f);
  const float lo = bf16_to_f32(lo_bits), hi = bf16_to_f32(lo_bits + 1), gap = hi - lo;
  const std::size_t N = 200000;
  const double p = 0.3, sigma = std::sqrt(p * (1 - p) / N);
  const float x = lo + static_cast<float>(p) * gap;
  for (int which = 0; which < 3; ++which) {
    CAPTURE(which);
    std::size_t ups = 0;
    for (std::size_t i = 0; i < N; ++i) {
      // Over steps (the seed) for one element, as an element sees them during training.
      const std::uint32_t d = adam_draw(sr_seed(5, i), 17);
      const std::uint32_t r = which == 0   ? adam_noise_w(d)
                              : which == 1 ? adam_noise_m(d)
                                           : adam_noise_v(d);
      ups += bf16_to_f32(f32_to_bf16_sr(x, r)) == hi;
    }
    CHECK(std::fabs(static_cast<double>(ups) / N - p) < 5 * sigma);
  }
}
