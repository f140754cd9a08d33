// Every kernel family at every SIMD level this CPU supports: the level's table against the scalar
// table on random inputs, on sizes that exercise the vector tails (bit for bit where the family
// promises it, within fp32 rounding where sums run in another order), and the dispatch choosing
// the active level's table. One family is one traits struct below; adding a family adds one.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "cache/lookup_kernels.h"
#include "common/aligned.h"
#include "common/cpu.h"
#include "common/error.h"
#include "common/rng.h"
#include "common/simd_dispatch.h"
#include "engine/gemm_kernels.h"
#include "engine/kernels.h"
#include "engine/kernels_bf16.h"
#include "engine/score_kernels.h"
#include "engine/tests/random_vectors.h"
#include "hashing/hash_kernels.h"
#include "quant/int8_kernels.h"

using namespace glide;
using glide::engine::testing::randoms;

namespace {

void check_close(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("index " << i);
    CHECK(std::fabs(a[i] - b[i]) <= tol * (1 + std::fabs(b[i])));
  }
}

// ---- fp32 (engine/kernels.h): within fp32 rounding of sums in another order.

void fp32_vector_kernels(const engine::Kernels& k, const engine::Kernels& ref) {
  Rng rng(3);
  for (std::size_t n : {1u, 7u, 16u, 33u, 128u, 200u, 1000u}) {
    CAPTURE(n);
    auto a = randoms(n, rng), b = randoms(n, rng);
    CHECK(k.dot(a.data(), b.data(), n) ==
          doctest::Approx(ref.dot(a.data(), b.data(), n)).epsilon(1e-4));
    auto y1 = b, y2 = b;
    k.axpy(0.37f, a.data(), y1.data(), n);
    ref.axpy(0.37f, a.data(), y2.data(), n);
    check_close(y1, y2, 1e-6f);
    CHECK(k.max(a.data(), n) == ref.max(a.data(), n));
    auto e1 = a, e2 = a;
    const float s1 = k.exp_shift_sum(e1.data(), n, 0.5f);
    const float s2 = ref.exp_shift_sum(e2.data(), n, 0.5f);
    CHECK(s1 == doctest::Approx(s2).epsilon(1e-5));
    check_close(e1, e2, 2e-6f);
    auto r1 = a, r2 = a;
    k.relu(r1.data(), n);
    ref.relu(r2.data(), n);
    CHECK(r1 == r2);
    // Softmax down the columns of 5 rows, stored apart and out of order, with and without
    // corrections; the result against a column-by-column reference too.
    const std::vector<std::uint64_t> base = {3 * n + 2, 1, n + 1, 4 * n + 3, 2 * n + 2};
    const std::vector<float> c = {0.5f, -1, 0, 2, 0.25f};
    for (const float* cs : {c.data(), static_cast<const float*>(nullptr)}) {
      auto z1 = randoms(5 * n + 3, rng);
      auto z2 = z1;
      const auto z0 = z1;
      std::vector<float> m1(n, -1e30f), m2(n, -1e30f), sum1(n, 0), sum2(n, 0), f(n);
      k.rows_max(z1.data(), base.data(), cs, 5, n, m1.data());
      ref.rows_max(z2.data(), base.data(), cs, 5, n, m2.data());
      CHECK(m1 == m2);
      k.rows_exp_sum(z1.data(), base.data(), cs, 5, n, m1.data(), sum1.data());
      ref.rows_exp_sum(z2.data(), base.data(), cs, 5, n, m2.data(), sum2.data());
      check_close(sum1, sum2, 1e-5f);
      for (std::size_t i = 0; i < n; ++i) f[i] = 1 / sum2[i];
      k.rows_scale(z1.data(), base.data(), 5, n, f.data());
      ref.rows_scale(z2.data(), base.data(), 5, n, f.data());
      check_close(z1, z2, 2e-6f);
      for (std::size_t i = 0; i < n; ++i) {  // each column is a softmax of its corrected values
        double mx = -1e30, total = 0;
        for (std::size_t r = 0; r < 5; ++r)
          mx = std::max(mx, double(z0[base[r] + i]) + (cs ? cs[r] : 0));
        for (std::size_t r = 0; r < 5; ++r)
          total += std::exp(double(z0[base[r] + i]) + (cs ? cs[r] : 0) - mx);
        CHECK(m1[i] == doctest::Approx(mx).epsilon(1e-6));
        for (std::size_t r = 0; r < 5; ++r)
          CHECK(z1[base[r] + i] ==
                doctest::Approx(std::exp(double(z0[base[r] + i]) + (cs ? cs[r] : 0) - mx) / total)
                    .epsilon(1e-5));
      }
    }
    // Adam over several steps with fresh gradients.
    auto w1 = a, w2 = a;
    std::vector<float> m1(n), v1(n), m2(n), v2(n);
    for (int t = 1; t <= 5; ++t) {
      auto g = randoms(n, rng);
      const engine::AdamStep s = engine::AdamStep::at(0.01f, 0.9f, 0.999f, 1e-8f, t);
      k.adam(w1.data(), m1.data(), v1.data(), g.data(), n, s);
      ref.adam(w2.data(), m2.data(), v2.data(), g.data(), n, s);
    }
    check_close(w1, w2, 1e-5f);
    check_close(m1, m2, 1e-6f);
    check_close(v1, v2, 1e-6f);
    // Adagrad likewise.
    auto w3 = a, w4 = a;
    std::vector<float> v3(n), v4(n);
    for (int t = 1; t <= 5; ++t) {
      auto g = randoms(n, rng);
      const engine::AdamStep s = engine::AdamStep::at(0.05f, 0.9f, 0.999f, 1e-7f, t);
      k.adagrad(w3.data(), v3.data(), g.data(), n, s);
      ref.adagrad(w4.data(), v4.data(), g.data(), n, s);
    }
    check_close(w3, w4, 1e-5f);
    check_close(v3, v4, 1e-6f);
  }
}

void fp32_row_kernels(const engine::Kernels& k, const engine::Kernels& ref) {
  Rng rng(5);
  for (std::size_t dim : {5u, 16u, 100u, 128u, 136u, 1024u}) {
    CAPTURE(dim);
    const std::size_t stride = dim + 3, nrows = 50;
    auto X = randoms(stride * nrows, rng);
    std::vector<std::uint32_t> rows;
    for (int i = 0; i < 37; ++i) rows.push_back(rng.below(nrows));
    auto coef = randoms(rows.size(), rng);
    auto w = randoms(dim, rng);
    std::vector<float> o1(rows.size()), o2(rows.size());
    k.dot_rows(w.data(), X.data(), stride, rows.data(), rows.size(), dim, o1.data());
    ref.dot_rows(w.data(), X.data(), stride, rows.data(), rows.size(), dim, o2.data());
    check_close(o1, o2, 1e-4f);
    std::vector<float> g1(dim, 9.f), g2(dim, -9.f);
    k.grad_rows(X.data(), stride, rows.data(), coef.data(), rows.size(), dim, g1.data());
    ref.grad_rows(X.data(), stride, rows.data(), coef.data(), rows.size(), dim, g2.data());
    check_close(g1, g2, 1e-4f);
    std::vector<float> b1(dim), b2(dim);
    auto dX1 = randoms(stride * nrows, rng);
    auto dX2 = dX1;
    k.backward_rows(w.data(), X.data(), dX1.data(), stride, rows.data(), coef.data(), rows.size(),
                    dim, b1.data());
    ref.backward_rows(w.data(), X.data(), dX2.data(), stride, rows.data(), coef.data(), rows.size(),
                      dim, b2.data());
    check_close(b1, b2, 1e-4f);
    check_close(dX1, dX2, 1e-4f);
    std::vector<float> s1(dim, 5.f), s2(dim, 6.f);
    k.sparse_matvec(rows.data(), coef.data(), rows.size(), X.data(), stride, dim, s1.data());
    ref.sparse_matvec(rows.data(), coef.data(), rows.size(), X.data(), stride, dim, s2.data());
    check_close(s1, s2, 1e-4f);
  }
}

void fp32_gather_kernels(const engine::Kernels& k, const engine::Kernels& ref) {
  Rng rng(9);
  for (std::size_t n : {0u, 3u, 16u, 37u, 100u}) {
    CAPTURE(n);
    const std::size_t dim = 300;
    // n distinct positions in a shuffled order, as a sampled layer's active set comes.
    std::vector<std::uint32_t> idx(dim);
    for (std::uint32_t i = 0; i < dim; ++i) idx[i] = i;
    for (std::size_t i = dim; i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
    idx.resize(n);
    const auto w = randoms(dim, rng), x = randoms(n, rng);
    CHECK(k.gather_dot(w.data(), idx.data(), x.data(), n) ==
          doctest::Approx(ref.gather_dot(w.data(), idx.data(), x.data(), n)).epsilon(1e-5));
    auto y1 = randoms(n, rng);
    auto y2 = y1;
    k.gather_axpy(0.7f, w.data(), idx.data(), y1.data(), n);
    ref.gather_axpy(0.7f, w.data(), idx.data(), y2.data(), n);
    check_close(y1, y2, 1e-6f);
    auto g1 = randoms(dim, rng);
    auto g2 = g1;
    k.scatter_axpy(-1.3f, x.data(), idx.data(), g1.data(), n);
    ref.scatter_axpy(-1.3f, x.data(), idx.data(), g2.data(), n);
    check_close(g1, g2, 1e-6f);
  }
}

struct Fp32 {
  using Table = engine::Kernels;
  static const KernelDispatch<Table>& dispatch() { return engine::fp32_kernel_dispatch(); }
  static const Table& active() { return engine::kernels(); }
  static void check(const Table& k, const Table& ref) {
    CHECK(k.isa != Isa::kScalar);
    fp32_vector_kernels(k, ref);
    fp32_row_kernels(k, ref);
    fp32_gather_kernels(k, ref);
  }
};

// ---- bf16 (engine/kernels_bf16.h): conversions and Adam's moments bit for bit, weights within
// two bf16 steps (reciprocal square roots), sums within fp32 rounding.

std::vector<engine::bf16> to_bf16(const std::vector<float>& x) {
  std::vector<engine::bf16> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = engine::f32_to_bf16(x[i]);
  return out;
}

void bf16_conversions(const engine::Bf16Kernels& k, const engine::Bf16Kernels& ref) {
  Rng rng(2);
  for (std::size_t n : {1u, 15u, 16u, 17u, 100u, 128u, 1000u}) {
    CAPTURE(n);
    auto x = randoms(n, rng, -3, 3);
    // Specials and ties in the mix.
    const std::uint32_t specials[] = {0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x3F808000,
                                      0x3F818000, 0x00000001, 0x80000000, 0x7F7FFFFF};
    for (std::size_t i = 0; i < n && i < std::size(specials); ++i)
      x[i * 7 % n] = std::bit_cast<float>(specials[i]);
    std::vector<engine::bf16> a(n), b(n);
    k.to_bf16(x.data(), a.data(), n);
    ref.to_bf16(x.data(), b.data(), n);
    CHECK(a == b);
    k.to_bf16_sr(x.data(), a.data(), n, 12345);
    ref.to_bf16_sr(x.data(), b.data(), n, 12345);
    CHECK(a == b);
    std::vector<float> f1(n), f2(n);
    k.to_f32(a.data(), f1.data(), n);
    ref.to_f32(b.data(), f2.data(), n);
    for (std::size_t i = 0; i < n; ++i)
      CHECK(std::bit_cast<std::uint32_t>(f1[i]) == std::bit_cast<std::uint32_t>(f2[i]));
  }
}

void bf16_dots_and_backward(const engine::Bf16Kernels& k, const engine::Bf16Kernels& ref) {
  Rng rng(4);
  for (std::size_t dim : {1u, 7u, 16u, 33u, 64u, 128u, 200u, 300u}) {
    CAPTURE(dim);
    const std::size_t B = 13, stride = engine::padded_bf16(dim), fstride = (dim + 15) / 16 * 16;
    const auto wf = randoms(dim, rng);
    const auto w = to_bf16(wf);
    const auto Xf = randoms(B * stride, rng, 0, 2);
    const auto X = to_bf16(Xf);
    // The tolerance of a dot product: fp32 rounding of sums of |w x| in another order.
    auto tol = [&](std::uint32_t r) {
      float s = 0;
      for (std::size_t i = 0; i < dim; ++i) s += std::fabs(wf[i] * Xf[r * stride + i]);
      return 2e-6f * s + 1e-7f;
    };
    const std::vector<std::uint32_t> rows = {3, 0, 12, 5, 5, 7, 1, 11, 2, 9};
    const std::size_t n = rows.size();
    std::vector<float> o1(n), o2(n);
    k.dot_rows_bb(w.data(), X.data(), stride, rows.data(), n, dim, o1.data());
    ref.dot_rows_bb(w.data(), X.data(), stride, rows.data(), n, dim, o2.data());
    for (std::size_t q = 0; q < n; ++q) CHECK(std::fabs(o1[q] - o2[q]) <= tol(rows[q]));
    k.dot_rows_fb(wf.data(), X.data(), stride, rows.data(), n, dim, o1.data());
    ref.dot_rows_fb(wf.data(), X.data(), stride, rows.data(), n, dim, o2.data());
    for (std::size_t q = 0; q < n; ++q) CHECK(std::fabs(o1[q] - o2[q]) <= tol(rows[q]));
    k.dot_rows_bf(w.data(), Xf.data(), stride, rows.data(), n, dim, o1.data());
    ref.dot_rows_bf(w.data(), Xf.data(), stride, rows.data(), n, dim, o2.data());
    for (std::size_t q = 0; q < n; ++q) CHECK(std::fabs(o1[q] - o2[q]) <= 2 * tol(rows[q]));
    CHECK(std::fabs(k.dot_f32(w.data(), Xf.data(), dim) - ref.dot_f32(w.data(), Xf.data(), dim)) <=
          2 * tol(0));
    // Backward: gradient and dX (fp32, its own stride) for bf16 and fp32 weights.
    const auto coef = randoms(n, rng);
    for (int wtype = 0; wtype < 2; ++wtype) {
      CAPTURE(wtype);
      std::vector<float> g1(dim), g2(dim), d1(B * fstride, 0.5f), d2 = d1;
      if (wtype == 0) {
        k.backward_rows_bb(w.data(), X.data(), stride, d1.data(), fstride, rows.data(), coef.data(),
                           n, dim, g1.data());
        ref.backward_rows_bb(w.data(), X.data(), stride, d2.data(), fstride, rows.data(),
                             coef.data(), n, dim, g2.data());
      } else {
        k.backward_rows_fb(wf.data(), X.data(), stride, d1.data(), fstride, rows.data(),
                           coef.data(), n, dim, g1.data());
        ref.backward_rows_fb(wf.data(), X.data(), stride, d2.data(), fstride, rows.data(),
                             coef.data(), n, dim, g2.data());
      }
      for (std::size_t i = 0; i < dim; ++i) CHECK(g1[i] == doctest::Approx(g2[i]).epsilon(1e-5));
      for (std::size_t i = 0; i < d1.size(); ++i)
        CHECK(d1[i] == doctest::Approx(d2[i]).epsilon(1e-5));
    }
  }
}

void bf16_outer_rows(const engine::Bf16Kernels& k, const engine::Bf16Kernels& ref) {
  Rng rng(11);
  // Sample counts around the 4-sample block, widths around the 64-column block and its tail.
  for (std::size_t n : {1u, 3u, 4u, 9u}) {
    for (std::size_t dim : {1u, 17u, 64u, 128u, 130u}) {
      CAPTURE(n);
      CAPTURE(dim);
      // K over the 128-row block; C read row-major and transposed.
      const std::size_t K = 301, ws = dim + 5, dxs = dim + 3;
      const auto C = randoms(K * (n + 2), rng), W = randoms(K * ws, rng);
      for (int transposed = 0; transposed < 2; ++transposed) {
        const std::size_t ck = transposed ? 1 : n + 2, cs = transposed ? K : 1;
        auto d1 = randoms(n * dxs, rng), d2 = d1;
        k.outer_rows(C.data(), ck, cs, W.data(), ws, K, n, dim, d1.data(), dxs);
        ref.outer_rows(C.data(), ck, cs, W.data(), ws, K, n, dim, d2.data(), dxs);
        for (std::size_t i = 0; i < d1.size(); ++i)
          CHECK(d1[i] == doctest::Approx(d2[i]).epsilon(1e-4).scale(1));
      }
    }
  }
}

// Distance in representable bf16 values (same sign).
int ulps(engine::bf16 a, engine::bf16 b) {
  return std::abs(static_cast<int>(a) - static_cast<int>(b));
}

void bf16_adam(const engine::Bf16Kernels& k, const engine::Bf16Kernels& ref) {
  for (std::size_t n : {1u, 15u, 16u, 128u, 333u}) {
    CAPTURE(n);
    Rng rng(5);
    auto w1 = to_bf16(randoms(n, rng)), w2 = w1, w3 = w1, w4 = w1;
    std::vector<engine::bf16> m1(n, 0), v1(n, 0), m2(n, 0), v2(n, 0);
    std::vector<float> m3(n, 0), v3(n, 0), m4(n, 0), v4(n, 0);
    for (std::uint64_t t = 1; t <= 20; ++t) {
      const auto g = randoms(n, rng);
      const engine::AdamStep s = engine::AdamStep::at(1e-3f, 0.9f, 0.999f, 1e-8f, t);
      const std::uint32_t seed = engine::sr_seed(7, t);
      k.adam_bf16(w1.data(), m1.data(), v1.data(), g.data(), n, s, seed);
      ref.adam_bf16(w2.data(), m2.data(), v2.data(), g.data(), n, s, seed);
      k.adam_bf16_w(w3.data(), m3.data(), v3.data(), g.data(), n, s, seed);
      ref.adam_bf16_w(w4.data(), m4.data(), v4.data(), g.data(), n, s, seed);
    }
    // Moments: the same bits. Weights: the same but for rare one-step differences (the step
    // is computed with reciprocal square roots on the vector paths).
    CHECK(m1 == m2);
    CHECK(v1 == v2);
    CHECK(m3 == m4);
    CHECK(v3 == v4);
    std::size_t differ = 0;
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(ulps(w1[i], w2[i]) <= 2);
      CHECK(ulps(w3[i], w4[i]) <= 2);
      differ += (w1[i] != w2[i]) + (w3[i] != w4[i]);
    }
    CHECK(differ <= std::max<std::size_t>(2, 2 * n / 20));
  }
}

struct Bf16 {
  using Table = engine::Bf16Kernels;
  static const KernelDispatch<Table>& dispatch() { return engine::bf16_kernel_dispatch(); }
  static const Table& active() { return engine::bf16_kernels(); }
  static void check(const Table& k, const Table& ref) {
    bf16_conversions(k, ref);
    bf16_dots_and_backward(k, ref);
    bf16_outer_rows(k, ref);
    bf16_adam(k, ref);
  }
};

// ---- int8 (quant/int8_kernels.h): exact integer sums, the same dequantization bits.

std::vector<float> uniform_floats(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

struct Int8 {
  using Table = quant::Int8Kernels;
  static const KernelDispatch<Table>& dispatch() { return quant::int8_kernel_dispatch(); }
  static const Table& active() { return quant::int8_kernels(); }
  static void check(const Table& k, const Table& ref) {
    std::mt19937 g(3);
    for (std::size_t n : {1, 3, 63, 64, 65, 127, 128, 129, 200, 256, 1000}) {
      CAPTURE(n);
      std::vector<std::uint8_t> a(n);
      std::vector<std::int8_t> w(n);
      for (auto& v : a) v = static_cast<std::uint8_t>(g() & 255);
      for (auto& v : w) v = static_cast<std::int8_t>(static_cast<int>(g() % 255) - 127);
      CHECK(k.dot_u8s8(a.data(), w.data(), n) == ref.dot_u8s8(a.data(), w.data(), n));
      // Extremes: every product 255 * -127 (the largest magnitude).
      std::vector<std::uint8_t> amax(n, 255);
      std::vector<std::int8_t> wmin(n, -127);
      CHECK(k.dot_u8s8(amax.data(), wmin.data(), n) == -255 * 127 * static_cast<int>(n));
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
          const std::vector<float> wsc = uniform_floats(rows, 1e-4f, 1e-2f, 5);
          const std::vector<float> bias = uniform_floats(rows, -1, 1, 6);
          const std::vector<float> xsc = uniform_floats(samples, 1e-3f, 1e-1f, 7);
          std::vector<float> o1(samples * ld, -7), o2(samples * ld, -7);
          k.gemm_u8s8_f32(W.data(), wstr, wsc.data(), bias.data(), rows, X.data(), xstr, xsc.data(),
                          samples, n, o1.data(), ld);
          ref.gemm_u8s8_f32(W.data(), wstr, wsc.data(), bias.data(), rows, X.data(), xstr,
                            xsc.data(), samples, n, o2.data(), ld);
          CHECK(o1 == o2);  // bit for bit, and the padding columns untouched
          // With unit scales and zero bias the outputs are the integer sums themselves.
          const std::vector<float> ones_r(rows, 1.0f), zeros_r(rows, 0.0f), ones_s(samples, 1.0f);
          k.gemm_u8s8_f32(W.data(), wstr, ones_r.data(), zeros_r.data(), rows, X.data(), xstr,
                          ones_s.data(), samples, n, o1.data(), ld);
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t s = 0; s < samples; ++s)
              REQUIRE(o1[s * ld + r] == static_cast<float>(ref.dot_u8s8(X.data() + s * xstr,
                                                                        W.data() + r * wstr, n)));
        }
      }
    }
  }
};

// ---- cache lookup (cache/lookup_kernels.h): exact int32 sums.

struct Lookup {
  using Table = cache::LookupKernels;
  static const KernelDispatch<Table>& dispatch() { return cache::lookup_kernel_dispatch(); }
  static const Table& active() { return cache::lookup_kernels(); }
  static void check(const Table& k, const Table& ref) {
    std::mt19937 g(7);
    std::uniform_int_distribution<int> w8(-127, 127), x16(-1023, 1023);
    for (const std::size_t n : {16u, 48u, 128u, 1024u}) {
      CAPTURE(n);
      const std::size_t stride = n + 16, rows = 37;
      std::vector<std::int8_t> a(rows * stride);
      std::vector<std::int16_t> x(n);
      for (auto& v : a) v = static_cast<std::int8_t>(w8(g));
      for (auto& v : x) v = static_cast<std::int16_t>(x16(g));
      // Row 0 at the extremes: the largest sum the format allows.
      std::fill_n(a.begin(), n, std::int8_t{-127});
      std::vector<std::int16_t> xe(n, -1023);
      std::vector<std::int32_t> want(rows), got(rows), want_e(1), got_e(1);
      ref.dots(a.data(), rows, stride, x.data(), n, want.data());
      ref.dots(a.data(), 1, stride, xe.data(), n, want_e.data());
      k.dots(a.data(), rows, stride, x.data(), n, got.data());
      CHECK(got == want);
      k.dots(a.data(), 1, stride, xe.data(), n, got_e.data());
      CHECK(got_e == want_e);
    }
  }
};

// ---- hashing (hashing/hash_kernels.h): bit for bit.

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Values from a small set, so ties and zeros are common.
std::vector<float> tie_heavy(Rng& rng, std::size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(static_cast<int>(rng.below(7)) - 3) * 0.5f;
  return v;
}

struct Hash {
  using Table = hashing::kernels::HashKernels;
  static const KernelDispatch<Table>& dispatch() {
    return hashing::kernels::hash_kernel_dispatch();
  }
  static const Table& active() { return hashing::kernels::hash_kernels(); }
  static void check(const Table& k, const Table& ref) {
    Rng rng(11);
    for (std::size_t width : {16u, 48u, 144u, 304u}) {
      CAPTURE(width);
      const std::size_t dim = 1 + rng.below(200);
      AlignedArray<float> proj(dim * width);
      for (auto& p : proj) p = static_cast<float>(static_cast<int>(rng.below(3)) - 1);
      std::vector<float> x(dim);
      for (auto& v : x) v = rng.below(4) == 0 ? 0.0f : static_cast<float>(rng.normal());
      std::vector<float> a(width), b(width);
      ref.project_dense(proj.data(), width, x.data(), dim, a.data());
      k.project_dense(proj.data(), width, x.data(), dim, b.data());
      CHECK(bitwise_equal(a, b));
      std::vector<std::uint32_t> ids;
      std::vector<float> vals;
      for (std::uint32_t i = 0; i < dim; ++i)
        if (rng.below(3) == 0) ids.push_back(i), vals.push_back(static_cast<float>(rng.normal()));
      ref.project_sparse(proj.data(), width, ids.data(), vals.data(), ids.size(), a.data());
      k.project_sparse(proj.data(), width, ids.data(), vals.data(), ids.size(), b.data());
      CHECK(bitwise_equal(a, b));
      hashing::kernels::ProjectionHash hash{static_cast<std::uint32_t>(rng.next()), (1u << 31) / 3};
      ref.project_hashed(hash, width, ids.data(), vals.data(), ids.size(), a.data());
      k.project_hashed(hash, width, ids.data(), vals.data(), ids.size(), b.data());
      CHECK(bitwise_equal(a, b));
      ref.project_hashed(hash, width, nullptr, x.data(), dim, a.data());
      k.project_hashed(hash, width, nullptr, x.data(), dim, b.data());
      CHECK(bitwise_equal(a, b));
    }
    for (std::uint32_t bin_size : {8u, 16u, 5u}) {
      for (std::size_t num_bins : {1u, 2u, 3u, 17u, 300u}) {
        CAPTURE(bin_size);
        CAPTURE(num_bins);
        const std::size_t dim = 64;
        const std::vector<float> x = tie_heavy(rng, dim);
        std::vector<std::uint32_t> pos(num_bins * bin_size);
        for (auto& p : pos) p = rng.below(dim);
        for (bool zeros_absent : {false, true}) {
          std::vector<std::uint32_t> a(num_bins), b(num_bins);
          ref.bin_argmax(x.data(), pos.data(), num_bins, bin_size, zeros_absent, a.data());
          k.bin_argmax(x.data(), pos.data(), num_bins, bin_size, zeros_absent, b.data());
          CHECK(a == b);
        }
      }
    }
  }
};

// ---- scores (engine/score_kernels.h): the maximum and the search exact, the exp sum within
// float rounding (each exp within 2 ulp, summed in another order).

struct Score {
  using Table = engine::ScoreKernels;
  static const KernelDispatch<Table>& dispatch() { return engine::score_kernel_dispatch(); }
  static const Table& active() { return engine::score_kernels(); }
  static void check(const Table& k, const Table& ref) {
    std::mt19937 g(11);
    for (std::size_t n : {1, 5, 15, 16, 17, 31, 33, 64, 65, 100, 1000, 1024, 1031}) {
      CAPTURE(n);
      // Scores over a range wider than exp's (terms that underflow), then a narrow one.
      for (const float spread : {200.0f, 8.0f}) {
        std::vector<float> z = uniform_floats(n, -spread, spread / 4, g());
        float m1 = 0, m2 = 0;
        const float s1 = k.max_exp_sum(z.data(), n, &m1);
        const float s2 = ref.max_exp_sum(z.data(), n, &m2);
        CHECK(m1 == m2);
        CHECK(m1 == *std::max_element(z.begin(), z.end()));
        CHECK(s1 == doctest::Approx(s2).epsilon(2e-6).scale(0));
        CHECK(s1 >= 1.0f);  // the maximum's own term
        // Every score equal: n terms of exp(0).
        std::vector<float> flat(n, 3.5f);
        CHECK(k.max_exp_sum(flat.data(), n, &m1) == doctest::Approx(n).epsilon(1e-6).scale(0));
        CHECK(m1 == 3.5f);
        // The search: bounds below, at and above scores (ties found), from every start.
        for (std::size_t c = 0; c < 4; ++c) {
          const float bound = c == 3 ? spread : z[g() % n];
          for (std::size_t from = 0; from <= n; from += 1 + n / 7) {
            CAPTURE(from);
            CHECK(k.find_at_least(z.data(), from, n, bound) ==
                  ref.find_at_least(z.data(), from, n, bound));
          }
        }
      }
    }
    // exp itself across its reduced range and beyond: the maximum 0 and 64 copies of y, whose
    // terms dominate the sum, against exp in double (relative error, no absolute slack).
    for (float y = -6.0f; y <= 0.0f; y += 0.0137f) {
      CAPTURE(y);
      std::vector<float> z(65, y);
      z[0] = 0;
      float m = 0;
      const double want = 1.0 + 64 * std::exp(static_cast<double>(y));
      CHECK(k.max_exp_sum(z.data(), z.size(), &m) == doctest::Approx(want).epsilon(1e-6).scale(0));
    }
  }
};

// ---- gemm (engine/gemm_kernels.h): C += A B against a double-precision product, each element
// within a bound on its terms' sizes: fp32 sums at the fp32 levels, 3 x 2^-16 a term and fp32
// sums on amx tiles (each operand split into two bf16 parts).

struct Gemm {
  using Table = engine::GemmKernels;
  static const KernelDispatch<Table>& dispatch() { return engine::gemm_kernel_dispatch(); }
  static const Table& active() { return engine::gemm_kernels(); }
  static void check(const Table& k, const Table& ref) {
    const double tol = std::string(k.name) == "amx-bf16" ? std::ldexp(1.0, -13) : 1e-5;
    check_against_double(k, tol);
    check_against_double(ref, 1e-5);
  }
  // Shapes off the tiles' 16 and 32 (and on them), A row-major and transposed (the two layouts
  // SharedRows passes), B row-major (read in place at the fp32 levels) and column-major (copied;
  // an fp32 output matrix's rows scored as B's columns), each with each and with padding, values
  // over a few orders of magnitude.
  static void check_against_double(const Table& k, double tol) {
    CAPTURE(k.name);
    std::mt19937 g(21);
    struct Shape {
      std::size_t m, kk, n;
    };
    for (const Shape sh : {Shape{1, 1, 1}, Shape{3, 5, 7}, Shape{16, 32, 16}, Shape{33, 128, 256},
                           Shape{40, 70, 130}, Shape{256, 1000, 128}}) {
      for (const auto& [transposed, b_columns] :
           {std::pair{false, false}, {true, true}, {false, true}, {true, false}}) {
        CAPTURE(sh.m);
        CAPTURE(sh.kk);
        CAPTURE(sh.n);
        CAPTURE(transposed);
        CAPTURE(b_columns);
        // B row-major with padding columns, or column-major with padding.
        const std::size_t bk = b_columns ? 1 : sh.n + 3, bn = b_columns ? sh.kk + 3 : 1;
        std::vector<float> a = uniform_floats(sh.m * sh.kk, -1, 1, g());
        std::vector<float> b = uniform_floats((sh.kk + 3) * (sh.n + 3), -1, 1, g());
        for (std::size_t i = 0; i < a.size(); i += 7) a[i] *= 1000;   // a few large terms
        for (std::size_t i = 0; i < b.size(); i += 5) b[i] *= 1e-3f;  // and small ones
        const std::size_t ai = transposed ? 1 : sh.kk, ak = transposed ? sh.m : 1;
        const std::size_t ldc = sh.n + 1;
        std::vector<float> c = uniform_floats(sh.m * ldc, -1, 1, g());
        const std::vector<float> c0 = c;
        engine::PackedB packed;
        k.pack_b(b.data(), bk, bn, sh.kk, sh.n, packed);
        k.gemm(a.data(), ai, ak, sh.m, packed, c.data(), ldc);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < sh.m; ++i)
          for (std::size_t j = 0; j < ldc; ++j) {
            if (j >= sh.n) {  // the columns past n untouched
              bad += c[i * ldc + j] != c0[i * ldc + j];
              continue;
            }
            double want = c0[i * ldc + j], size = std::fabs(c0[i * ldc + j]);
            for (std::size_t p = 0; p < sh.kk; ++p) {
              const double t = double(a[i * ai + p * ak]) * b[p * bk + j * bn];
              want += t;
              size += std::fabs(t);
            }
            bad += !(std::fabs(c[i * ldc + j] - want) <= tol * size + 1e-30);
          }
        CHECK(bad == 0);
        // Rows in two calls: the same bits (results must not depend on how threads split rows).
        if (sh.m > 1 && !transposed) {
          std::vector<float> c2 = c0;
          const std::size_t half = sh.m / 2;
          k.gemm(a.data(), ai, ak, half, packed, c2.data(), ldc);
          k.gemm(a.data() + half * ai, ai, ak, sh.m - half, packed, c2.data() + half * ldc, ldc);
          CHECK(c2 == c);
        }
      }
    }
    // A B packed by another table is refused.
    const Table& other = &k == &engine::gemm_kernel_dispatch().scalar()
                             ? engine::gemm_kernel_dispatch().at(Isa::kAmx)
                             : engine::gemm_kernel_dispatch().scalar();
    if (&other != &k) {
      engine::PackedB packed;
      float one = 1, out = 0;
      other.pack_b(&one, 1, 1, 1, 1, packed);
      CHECK_THROWS_AS(k.gemm(&one, 1, 1, 1, packed, &out, 1), Error);
    }
  }
};

// Restores the active level when a test that switches it ends.
struct LevelGuard {
  Isa saved = active_isa();
  ~LevelGuard() { set_active_isa(saved); }
};

}  // namespace

#define GLIDE_KERNEL_FAMILIES Fp32, Bf16, Int8, Lookup, Hash, Score, Gemm

TEST_CASE_TEMPLATE("every level's kernel table equals the scalar table", F, GLIDE_KERNEL_FAMILIES) {
  const KernelDispatch<typename F::Table>& d = F::dispatch();
  const auto levels = d.runnable();
  REQUIRE(!levels.empty());
  REQUIRE(levels.front().first == Isa::kScalar);
  REQUIRE(levels.front().second == &d.scalar());
  std::string tested;
  for (const auto& [isa, table] : levels) {
    if (table == &d.scalar()) continue;
    CAPTURE(isa_name(isa));
    F::check(*table, d.scalar());
    tested += std::string(" ") + isa_name(isa);
  }
  MESSAGE("tables tested against the scalar one, by the lowest level using each:" << tested);
  for (Isa isa : kAllIsas)
    if (!isa_supported(isa)) MESSAGE("CPU lacks " << isa_name(isa) << ": its tables not tested");
}

TEST_CASE_TEMPLATE("each family runs the table of the active level", F, GLIDE_KERNEL_FAMILIES) {
  LevelGuard guard;
  const KernelDispatch<typename F::Table>& d = F::dispatch();
  for (Isa isa : kAllIsas) {
    CAPTURE(isa_name(isa));
    if (!isa_supported(isa)) {
      CHECK_FALSE(set_active_isa(isa));
      continue;
    }
    REQUIRE(set_active_isa(isa));
    CHECK(&F::active() == &d.at(isa));
    // A level runs its own table or a lower level's: never one the CPU lacks.
    for (const auto& [level, table] : d.runnable())
      if (table == &d.at(isa)) CHECK(level <= isa);
  }
}

namespace {
std::string fp32_name(const engine::Kernels& k) {
  return isa_name(k.isa);
}
template <class T>
std::string table_name(const T& t) {
  return t.name;
}
}  // namespace

TEST_CASE("the table each family uses at each level") {
  // Levels without a table of their own use the best lower level's.
  const std::vector<std::vector<std::string>> want = {
      // scalar, avx2, avx512, avx512-vnni, avx512-bf16, amx
      {"scalar", "avx2", "avx512", "avx512", "avx512", "avx512"},                // fp32
      {"scalar", "scalar", "avx512", "avx512", "avx512-bf16", "avx512-bf16"},    // bf16
      {"scalar", "scalar", "scalar", "avx512-vnni", "avx512-vnni", "amx-int8"},  // int8
      {"scalar", "sse2", "sse2", "avx512-vnni", "avx512-vnni", "avx512-vnni"},   // lookup
      {"scalar", "scalar", "avx512", "avx512", "avx512", "avx512"},              // hash
      {"scalar", "avx2", "avx512", "avx512", "avx512", "avx512"},                // score
      {"scalar", "scalar", "avx512", "avx512", "avx512", "amx-bf16"},            // gemm
  };
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    CAPTURE(isa_name(isa));
    const auto l = static_cast<std::size_t>(isa);
    CHECK(fp32_name(engine::fp32_kernel_dispatch().at(isa)) == want[0][l]);
    CHECK(table_name(engine::bf16_kernel_dispatch().at(isa)) == want[1][l]);
    const std::string int8 = table_name(quant::int8_kernel_dispatch().at(isa));
    // amx without the tile state from Linux: VNNI.
    CHECK((int8 == want[2][l] || (isa == Isa::kAmx && int8 == "avx512-vnni")));
    CHECK(table_name(cache::lookup_kernel_dispatch().at(isa)) == want[3][l]);
    CHECK(table_name(hashing::kernels::hash_kernel_dispatch().at(isa)) == want[4][l]);
    CHECK(table_name(engine::score_kernel_dispatch().at(isa)) == want[5][l]);
    const std::string gemm = table_name(engine::gemm_kernel_dispatch().at(isa));
    CHECK((gemm == want[6][l] || (isa == Isa::kAmx && gemm == "avx512")));
  }
}
