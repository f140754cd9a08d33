#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "hashing/hash_family.h"
#include "hashing/simhash.h"
#include "hashing/tests/test_util.h"

using namespace glide;
using namespace glide::hashing;

namespace {

HashConfig config_for(HashKind kind, std::uint32_t dim, std::uint32_t K, std::uint32_t L,
                      std::uint32_t range_pow, std::uint64_t seed = 1) {
  HashConfig c;
  c.kind = kind;
  c.dim = dim;
  c.K = K;
  c.L = L;
  c.range_pow = range_pow;
  c.seed = seed;
  return c;
}

// Fraction of tables in which x and y land in the same bucket.
double collision_rate(const HashFamily& family, const float* x, const float* y) {
  const std::uint32_t L = family.num_tables();
  std::vector<std::uint32_t> a(L), b(L);
  family.hash_dense(x, a.data());
  family.hash_dense(y, b.data());
  std::uint32_t same = 0;
  for (std::uint32_t t = 0; t < L; ++t) same += a[t] == b[t];
  return static_cast<double>(same) / L;
}

// A random sparse binary set of `size` ids below dim and one with Jaccard similarity `jaccard`.
void sets_with_jaccard(Rng& rng, std::uint32_t dim, std::uint32_t size, double jaccard,
                       std::vector<float>& x, std::vector<float>& y) {
  // |A|=|B|=size, |A&B| = s: J = s / (2*size - s).
  const auto shared =
      static_cast<std::uint32_t>(std::lround(2.0 * size * jaccard / (1.0 + jaccard)));
  x.assign(dim, 0.0f);
  y.assign(dim, 0.0f);
  std::vector<std::uint32_t> ids(dim);
  for (std::uint32_t i = 0; i < dim; ++i) ids[i] = i;
  for (std::uint32_t i = 0; i < 2 * size; ++i) std::swap(ids[i], ids[i + rng.below(dim - i)]);
  for (std::uint32_t i = 0; i < size; ++i) x[ids[i]] = 1.0f;
  for (std::uint32_t i = 0; i < shared; ++i) y[ids[i]] = 1.0f;
  for (std::uint32_t i = 0; i < size - shared; ++i) y[ids[size + i]] = 1.0f;
}

}  // namespace

TEST_CASE("hash kinds parse and print") {
  for (HashKind kind : {HashKind::kSimHash, HashKind::kWta, HashKind::kDwta, HashKind::kDoph})
    CHECK(parse_hash_kind(hash_kind_name(kind)) == kind);
  CHECK_THROWS_AS(parse_hash_kind("minhash"), Error);
  HashConfig bad = config_for(HashKind::kWta, 0, 6, 50, 16);
  CHECK_THROWS_AS(bad.validate(), Error);
  bad.dim = 10;
  bad.range_pow = 31;
  CHECK_THROWS_AS(make_hash_family(bad), Error);
  CHECK(config_for(HashKind::kDwta, 128, 6, 50, 18).to_string() ==
        "dwta dim=128 K=6 L=50 range_pow=18 bin_size=8 seed=1");
}

TEST_CASE("families are deterministic, seed-dependent and stay in range") {
  Rng rng(1);
  const auto x = test::random_unit(rng, 128);
  for (HashKind kind : {HashKind::kSimHash, HashKind::kWta, HashKind::kDwta, HashKind::kDoph}) {
    INFO(hash_kind_name(kind));
    const auto a = make_hash_family(config_for(kind, 128, 6, 50, 12, 7));
    const auto b = make_hash_family(config_for(kind, 128, 6, 50, 12, 7));
    const auto c = make_hash_family(config_for(kind, 128, 6, 50, 12, 8));
    std::vector<std::uint32_t> ha(50), hb(50), hc(50);
    a->hash_dense(x.data(), ha.data());
    b->hash_dense(x.data(), hb.data());
    c->hash_dense(x.data(), hc.data());
    CHECK(ha == hb);
    CHECK(ha != hc);
    for (std::uint32_t h : ha) CHECK(h < (1u << a->range_pow()));
    // The batch entry point agrees with one-at-a-time hashing.
    std::vector<float> rows(3 * 130);
    for (int r = 0; r < 3; ++r) std::copy(x.begin(), x.end(), rows.begin() + r * 130);
    std::vector<std::uint32_t> batch(3 * 50);
    a->hash_dense_batch(rows.data(), 130, 3, batch.data());
    for (int r = 0; r < 3; ++r) CHECK(std::equal(ha.begin(), ha.end(), batch.begin() + r * 50));
  }
  // SimHash with K=6 has 6 bits per bucket id; WTA with bin_size 8 has 3 per value.
  CHECK(make_hash_family(config_for(HashKind::kSimHash, 128, 6, 50, 16))->range_pow() == 6);
  CHECK(make_hash_family(config_for(HashKind::kWta, 128, 6, 50, 16))->range_pow() == 16);
  CHECK(make_hash_family(config_for(HashKind::kWta, 128, 4, 50, 16))->range_pow() == 12);
}

TEST_CASE("hash_sparse equals hash_dense of the same vector") {
  Rng rng(2);
  for (HashKind kind : {HashKind::kSimHash, HashKind::kWta, HashKind::kDwta, HashKind::kDoph}) {
    for (std::uint32_t dim : {100u, 50000u}) {
      INFO(hash_kind_name(kind), " dim ", dim);
      const auto family = make_hash_family(config_for(kind, dim, 4, 20, 14, 3));
      for (int trial = 0; trial < 5; ++trial) {
        std::vector<float> x(dim, 0.0f);
        std::vector<std::uint32_t> ids;
        std::vector<float> vals;
        for (std::uint32_t i = 0; i < dim; ++i)
          if (rng.below(dim < 1000 ? 3 : 500) == 0) {
            x[i] = static_cast<float>(rng.normal());
            ids.push_back(i);
            vals.push_back(x[i]);
          }
        std::vector<std::uint32_t> dense(20), sparse(20);
        family->hash_dense(x.data(), dense.data());
        family->hash_sparse({ids, vals}, sparse.data());
        CHECK(dense == sparse);
      }
    }
  }
}

TEST_CASE("SimHash collides with probability 1 - angle/pi") {
  // K=1 and one bit per table: the per-table collision rate is the per-bit agreement rate.
  Rng rng(4);
  for (std::uint32_t ratio : {1u, 3u}) {
    HashConfig config = config_for(HashKind::kSimHash, 128, 1, 2000, 20, 9);
    config.sparse_ratio = ratio;
    const auto family = make_hash_family(config);
    for (double angle : {0.15, 0.5, 1.0, 1.6, 2.5}) {
      double sum = 0;
      const int pairs = 40;
      for (int p = 0; p < pairs; ++p) {
        const auto x = test::random_unit(rng, 128);
        const auto y = test::at_angle(rng, x, angle);
        sum += collision_rate(*family, x.data(), y.data());
      }
      const double expected = 1.0 - angle / std::numbers::pi;
      INFO("ratio ", ratio, " angle ", angle);
      // 80k bit comparisons: sampling error ~0.002; sparse projections of dense random vectors
      // stay within ~0.01 of the Gaussian-projection rate.
      CHECK(std::abs(sum / pairs - expected) < (ratio == 1 ? 0.012 : 0.02));
    }
  }
}

TEST_CASE("WTA and DWTA collision rates increase with similarity") {
  Rng rng(6);
  for (HashKind kind : {HashKind::kWta, HashKind::kDwta}) {
    // K=1, bin_size 8: the bucket id is the argmax position itself.
    const auto family = make_hash_family(config_for(kind, 128, 1, 1000, 20, 10));
    std::vector<double> rates;
    for (double angle : {0.1, 0.4, 0.8, 1.2, 1.5708}) {
      double sum = 0;
      for (int p = 0; p < 30; ++p) {
        const auto x = test::random_unit(rng, 128);
        const auto y = test::at_angle(rng, x, angle);
        sum += collision_rate(*family, x.data(), y.data());
      }
      rates.push_back(sum / 30);
    }
    INFO(hash_kind_name(kind), " rates ", rates[0], " ", rates[1], " ", rates[2], " ", rates[3],
         " ", rates[4]);
    for (std::size_t i = 1; i < rates.size(); ++i) CHECK(rates[i] < rates[i - 1] - 0.03);
    CHECK(rates[0] > 0.8);
    // Orthogonal vectors: argmax positions agree about as often as chance, 1/8.
    CHECK(rates.back() == doctest::Approx(0.125).epsilon(0.3));
  }
}

TEST_CASE("DWTA on sparse inputs and DOPH on sets collide more as sets overlap more") {
  Rng rng(8);
  const std::uint32_t dim = 20000;
  const auto doph = make_hash_family(config_for(HashKind::kDoph, dim, 1, 1000, 24, 11));
  const auto dwta = make_hash_family(config_for(HashKind::kDwta, dim, 1, 200, 24, 12));
  std::vector<double> doph_rates, dwta_rates;
  for (double jaccard : {0.9, 0.6, 0.3, 0.1, 0.0}) {
    double sum_doph = 0, sum_dwta = 0;
    for (int p = 0; p < 20; ++p) {
      std::vector<float> x, y;
      sets_with_jaccard(rng, dim, 200, jaccard, x, y);
      sum_doph += collision_rate(*doph, x.data(), y.data());
      // DWTA needs distinct values to rank: give every coordinate a fixed random weight.
      for (std::uint32_t i = 0; i < dim; ++i) {
        const float w = 1.0f + static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;
        x[i] *= w;
        y[i] *= w;
      }
      sum_dwta += collision_rate(*dwta, x.data(), y.data());
    }
    // Densified one-permutation hashing is an unbiased estimator of the Jaccard similarity.
    INFO("jaccard ", jaccard);
    CHECK(std::abs(sum_doph / 20 - jaccard) < 0.04);
    doph_rates.push_back(sum_doph / 20);
    dwta_rates.push_back(sum_dwta / 20);
  }
  for (std::size_t i = 1; i < dwta_rates.size(); ++i) {
    INFO("dwta ", dwta_rates[i - 1], " -> ", dwta_rates[i]);
    CHECK(dwta_rates[i] < dwta_rates[i - 1] - 0.05);
  }
}
