// The scalar hash kernels on the sums they document, and every hash family giving the same
// buckets at every level (each table against the scalar one: tests/kernel_levels_test.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/aligned.h"
#include "common/cpu.h"
#include "common/rng.h"
#include "hashing/hash_family.h"
#include "hashing/hash_kernels.h"
#include "hashing/tests/test_util.h"

using namespace glide;
using namespace glide::hashing;

TEST_CASE("scalar projection kernels compute the sums they document") {
  Rng rng(3);
  const std::size_t dim = 37, width = 48;
  AlignedArray<float> proj(dim * width);
  for (auto& p : proj) p = static_cast<float>(static_cast<int>(rng.below(3)) - 1);
  std::vector<float> x(dim), out(width);
  for (auto& v : x) v = static_cast<float>(rng.normal());
  kernels::scalar::project_dense(proj.data(), width, x.data(), dim, out.data());
  for (std::size_t b = 0; b < width; ++b) {
    double expect = 0;
    for (std::size_t i = 0; i < dim; ++i) expect += double{x[i]} * proj[i * width + b];
    CHECK(out[b] == doctest::Approx(expect).epsilon(1e-4));
  }
  kernels::ProjectionHash hash{12345, (1u << 31) / 3};
  std::vector<std::uint32_t> ids = {2, 9, 1000, 77777};
  std::vector<float> vals = {0.5f, -1.25f, 2.0f, 0.75f};
  kernels::scalar::project_hashed(hash, width, ids.data(), vals.data(), ids.size(), out.data());
  std::size_t nonzero = 0;
  for (std::size_t b = 0; b < width; ++b) {
    double expect = 0;
    for (std::size_t j = 0; j < ids.size(); ++j) {
      const int c = hash.coefficient(ids[j], static_cast<std::uint32_t>(b));
      expect += c * double{vals[j]};
      nonzero += c != 0;
    }
    CHECK(out[b] == doctest::Approx(expect).epsilon(1e-5));
  }
  // About 1/3 of the coefficients are nonzero.
  CHECK(nonzero > ids.size() * width / 6);
  CHECK(nonzero < ids.size() * width / 2);
}

TEST_CASE("scalar bin argmax picks the first maximum and marks all-zero bins empty") {
  const std::vector<float> x = {0, 3, 3, -1, 0, 0, 0, 0, -2, -5, 0, -2};
  const std::vector<std::uint32_t> pos = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  std::uint32_t out[3];
  kernels::scalar::bin_argmax(x.data(), pos.data(), 3, 4, false, out);
  CHECK(out[0] == 1);
  CHECK(out[1] == 0);
  CHECK(out[2] == 2);  // 0 beats -2 and -5 when zeros are present
  kernels::scalar::bin_argmax(x.data(), pos.data(), 3, 4, true, out);
  CHECK(out[0] == 1);
  CHECK(out[1] == kernels::kEmptyBin);
  CHECK(out[2] == 0);  // zeros absent: first -2 wins the tie
}

TEST_CASE("every hash family gives the same buckets on the scalar and AVX-512 paths") {
  if (!isa_supported(Isa::kAvx512)) {
    MESSAGE("skipped: this CPU has no AVX-512");
    return;
  }
  test::IsaGuard guard;
  Rng rng(5);
  for (HashKind kind : {HashKind::kSimHash, HashKind::kWta, HashKind::kDwta, HashKind::kDoph}) {
    for (std::uint32_t dim : {128u, 3000u, 200000u}) {
      HashConfig config;
      config.kind = kind;
      config.dim = dim;
      config.K = 6;
      config.L = 50;
      config.range_pow = 16;
      config.bin_size = dim == 3000 ? 16 : 8;
      const auto family = make_hash_family(config);
      std::vector<float> x(dim, 0.0f);
      std::vector<std::uint32_t> ids;
      std::vector<float> vals;
      for (std::uint32_t i = 0; i < dim; ++i) {
        if (dim < 5000 || rng.below(dim / 80) == 0) x[i] = static_cast<float>(rng.normal());
        if (dim < 5000 && rng.below(4) == 0) x[i] = 0;  // some zeros for DWTA's empty bins
        if (x[i] != 0) ids.push_back(i), vals.push_back(x[i]);
      }
      const data::SparseView sparse{ids, vals};
      std::vector<std::uint32_t> scalar_dense(50), scalar_sparse(50), simd_dense(50),
          simd_sparse(50);
      REQUIRE(set_active_isa(Isa::kScalar));
      family->hash_dense(x.data(), scalar_dense.data());
      family->hash_sparse(sparse, scalar_sparse.data());
      REQUIRE(set_active_isa(Isa::kAvx512));
      family->hash_dense(x.data(), simd_dense.data());
      family->hash_sparse(sparse, simd_sparse.data());
      INFO(config.to_string());
      CHECK(scalar_dense == simd_dense);
      CHECK(scalar_sparse == simd_sparse);
    }
  }
}
