// Every vectorized kernel against the scalar reference, on odd sizes that exercise the tails.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "engine/kernels.h"
#include "engine/tests/random_vectors.h"

using namespace glide;
using namespace glide::engine;
using glide::engine::testing::randoms;

namespace {

void check_close(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("index " << i);
    CHECK(std::fabs(a[i] - b[i]) <= tol * (1 + std::fabs(b[i])));
  }
}

std::vector<const Kernels*> fast_paths() {
  std::vector<const Kernels*> out;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (isa_supported(isa))
      out.push_back(&kernels_for(isa));
    else
      MESSAGE("CPU lacks " << isa_name(isa) << ": its kernels are not tested here");
  }
  return out;
}

}  // namespace

TEST_CASE("vectorized kernels equal the scalar reference") {
  const Kernels& ref = scalar_kernels();
  Rng rng(3);
  for (const Kernels* k : fast_paths()) {
    CAPTURE(isa_name(k->isa));
    for (std::size_t n : {1u, 7u, 16u, 33u, 128u, 200u, 1000u}) {
      CAPTURE(n);
      auto a = randoms(n, rng), b = randoms(n, rng);
      CHECK(k->dot(a.data(), b.data(), n) ==
            doctest::Approx(ref.dot(a.data(), b.data(), n)).epsilon(1e-4));
      auto y1 = b, y2 = b;
      k->axpy(0.37f, a.data(), y1.data(), n);
      ref.axpy(0.37f, a.data(), y2.data(), n);
      check_close(y1, y2, 1e-6f);
      CHECK(k->max(a.data(), n) == ref.max(a.data(), n));
      auto e1 = a, e2 = a;
      const float s1 = k->exp_shift_sum(e1.data(), n, 0.5f);
      const float s2 = ref.exp_shift_sum(e2.data(), n, 0.5f);
      CHECK(s1 == doctest::Approx(s2).epsilon(1e-5));
      check_close(e1, e2, 2e-6f);
      auto r1 = a, r2 = a;
      k->relu(r1.data(), n);
      ref.relu(r2.data(), n);
      CHECK(r1 == r2);
      // Adam over several steps with fresh gradients.
      auto w1 = a, w2 = a;
      std::vector<float> m1(n), v1(n), m2(n), v2(n);
      for (int t = 1; t <= 5; ++t) {
        auto g = randoms(n, rng);
        const AdamStep s = AdamStep::at(0.01f, 0.9f, 0.999f, 1e-8f, t);
        k->adam(w1.data(), m1.data(), v1.data(), g.data(), n, s);
        ref.adam(w2.data(), m2.data(), v2.data(), g.data(), n, s);
      }
      check_close(w1, w2, 1e-5f);
      check_close(m1, m2, 1e-6f);
      check_close(v1, v2, 1e-6f);
    }
  }
}

TEST_CASE("row kernels equal the scalar reference") {
  const Kernels& ref = scalar_kernels();
  Rng rng(5);
  for (const Kernels* k : fast_paths()) {
    CAPTURE(isa_name(k->isa));
    for (std::size_t dim : {5u, 16u, 100u, 128u, 136u, 1024u}) {
      CAPTURE(dim);
      const std::size_t stride = dim + 3, nrows = 50;
      auto X = randoms(stride * nrows, rng);
      std::vector<std::uint32_t> rows;
      for (int i = 0; i < 37; ++i) rows.push_back(rng.below(nrows));
      auto coef = randoms(rows.size(), rng);
      auto w = randoms(dim, rng);
      std::vector<float> o1(rows.size()), o2(rows.size());
      k->dot_rows(w.data(), X.data(), stride, rows.data(), rows.size(), dim, o1.data());
      ref.dot_rows(w.data(), X.data(), stride, rows.data(), rows.size(), dim, o2.data());
      check_close(o1, o2, 1e-4f);
      std::vector<float> g1(dim, 9.f), g2(dim, -9.f);
      k->grad_rows(X.data(), stride, rows.data(), coef.data(), rows.size(), dim, g1.data());
      ref.grad_rows(X.data(), stride, rows.data(), coef.data(), rows.size(), dim, g2.data());
      check_close(g1, g2, 1e-4f);
      std::vector<float> b1(dim), b2(dim);
      auto dX1 = randoms(stride * nrows, rng);
      auto dX2 = dX1;
      k->backward_rows(w.data(), X.data(), dX1.data(), stride, rows.data(), coef.data(),
                       rows.size(), dim, b1.data());
      ref.backward_rows(w.data(), X.data(), dX2.data(), stride, rows.data(), coef.data(),
                        rows.size(), dim, b2.data());
      check_close(b1, b2, 1e-4f);
      check_close(dX1, dX2, 1e-4f);
      std::vector<float> s1(dim, 5.f), s2(dim, 6.f);
      k->sparse_matvec(rows.data(), coef.data(), rows.size(), X.data(), stride, dim, s1.data());
      ref.sparse_matvec(rows.data(), coef.data(), rows.size(), X.data(), stride, dim, s2.data());
      check_close(s1, s2, 1e-4f);
    }
  }
}

TEST_CASE("gather and scatter kernels equal the scalar reference") {
  const Kernels& ref = scalar_kernels();
  Rng rng(9);
  for (const Kernels* k : fast_paths()) {
    CAPTURE(isa_name(k->isa));
    for (std::size_t n : {0u, 3u, 16u, 37u, 100u}) {
      CAPTURE(n);
      const std::size_t dim = 300;
      // n distinct positions in a shuffled order, as a sampled layer's active set comes.
      std::vector<std::uint32_t> idx(dim);
      for (std::uint32_t i = 0; i < dim; ++i) idx[i] = i;
      for (std::size_t i = dim; i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
      idx.resize(n);
      const auto w = randoms(dim, rng), x = randoms(n, rng);
      CHECK(k->gather_dot(w.data(), idx.data(), x.data(), n) ==
            doctest::Approx(ref.gather_dot(w.data(), idx.data(), x.data(), n)).epsilon(1e-5));
      auto y1 = randoms(n, rng);
      auto y2 = y1;
      k->gather_axpy(0.7f, w.data(), idx.data(), y1.data(), n);
      ref.gather_axpy(0.7f, w.data(), idx.data(), y2.data(), n);
      check_close(y1, y2, 1e-6f);
      auto g1 = randoms(dim, rng);
      auto g2 = g1;
      k->scatter_axpy(-1.3f, x.data(), idx.data(), g1.data(), n);
      ref.scatter_axpy(-1.3f, x.data(), idx.data(), g2.data(), n);
      check_close(g1, g2, 1e-6f);
    }
  }
  // Hand-worked: w = {1, 2, 3, 4}, positions {3, 0}, x = {10, 100}.
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
  const std::uint32_t ids[] = {1, 0};
  const float vals[] = {2.0f, -1.0f};
  const float W[] = {1, 2, 10, 20};  // two rows of dim 2
  float out[2];
  k.sparse_matvec(ids, vals, 2, W, 2, 2, out);
  CHECK(out[0] == 19.0f);
  CHECK(out[1] == 38.0f);
}
