// The scalar reference kernels on hand-worked values. Every other level's table is tested against
// them in tests/kernel_levels_test.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/kernels.h"

using namespace glide;
using namespace glide::engine;

TEST_CASE("scalar gather and scatter kernels on hand-worked values") {
  const Kernels& ref = scalar_kernels();
  // w = {1, 2, 3, 4}, positions {3, 0}, x = {10, 100}.
  const float w[4] = {1, 2, 3, 4}, x[2] = {10, 100};
  const std::uint32_t idx[2] = {3, 0};
  CHECK(ref.gather_dot(w, idx, x, 2) == 140.0f);
  float y[2] = {1, 1}, g[4] = {0, 0, 0, 0};
  ref.gather_axpy(2.0f, w, idx, y, 2);
  CHECK((y[0] == 9.0f && y[1] == 3.0f));
  ref.scatter_axpy(0.5f, x, idx, g, 2);
  CHECK((g[0] == 50.0f && g[3] == 5.0f && g[1] == 0.0f));
}

TEST_CASE("scalar reference kernels are right on hand-worked values") {
  const Kernels& k = scalar_kernels();
  const float a[] = {1, 2, 3}, b[] = {4, -5, 6};
  CHECK(k.dot(a, b, 3) == 12.0f);
  float e[] = {0.0f, std::log(2.0f)};
  CHECK(k.exp_shift_sum(e, 2, 0.0f) == doctest::Approx(3.0f));
  // First Adam step moves each weight by lr against the gradient's sign.
  float w[] = {1.0f, 1.0f}, m[2] = {}, v[2] = {};
  const float g[] = {0.5f, -2.0f};
  k.adam(w, m, v, g, 2, AdamStep::at(0.1f, 0.9f, 0.999f, 1e-8f, 1));
  CHECK(w[0] == doctest::Approx(0.9f));
  CHECK(w[1] == doctest::Approx(1.1f));
  // Adagrad: the first step moves each weight by lr against the gradient's sign, the second
  // (the same gradient) by lr / sqrt(2).
  float wa[] = {1.0f, 1.0f}, va[2] = {};
  const AdamStep s = AdamStep::at(0.1f, 0.9f, 0.999f, 1e-10f, 1);
  k.adagrad(wa, va, g, 2, s);
  CHECK(wa[0] == doctest::Approx(0.9f));
  CHECK(wa[1] == doctest::Approx(1.1f));
  CHECK(va[1] == 4.0f);
  k.adagrad(wa, va, g, 2, s);
  CHECK(wa[0] == doctest::Approx(0.9f - 0.1f / std::sqrt(2.0f)));
  CHECK(va[1] == 8.0f);
  const std::uint32_t ids[] = {1, 0};
  const float vals[] = {2.0f, -1.0f};
  const float W[] = {1, 2, 10, 20};  // two rows of dim 2
  float out[2];
  k.sparse_matvec(ids, vals, 2, W, 2, 2, out);
  CHECK(out[0] == 19.0f);
  CHECK(out[1] == 38.0f);
}
