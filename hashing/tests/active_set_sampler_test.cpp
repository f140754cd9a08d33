#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "hashing/active_set_sampler.h"

using namespace glide;
using namespace glide::hashing;

namespace {

// 4 tables, the query's bucket is 1 in every table. Id 1 is in 4 tables, id 2 in 3, id 3 in 2,
// ids 10..13 in one each; bucket 0 holds decoys that must never be returned.
BucketTables hand_built() {
  TableConfig config;
  config.bucket_capacity = 8;
  BucketTables tables(4, 2, config);
  const std::vector<std::vector<std::uint32_t>> contents = {
      {1, 2, 3, 10}, {1, 2, 11}, {1, 2, 3, 12}, {1, 13}};
  for (std::uint32_t t = 0; t < 4; ++t) {
    for (std::uint32_t id : contents[t]) tables.insert(t, 1, id);
    tables.insert(t, 0, 50 + t);
  }
  return tables;
}

const std::vector<std::uint32_t> kBuckets = {1, 1, 1, 1};

std::set<std::uint32_t> as_set(const std::vector<std::uint32_t>& v) {
  return {v.begin(), v.end()};
}

bool no_duplicates(const std::vector<std::uint32_t>& v) {
  return as_set(v).size() == v.size();
}

}  // namespace

TEST_CASE("strategy names parse") {
  for (auto s : {SampleStrategy::kUnion, SampleStrategy::kTopK, SampleStrategy::kThreshold})
    CHECK(parse_sample_strategy(sample_strategy_name(s)) == s);
  CHECK_THROWS_AS(parse_sample_strategy("all"), Error);
}

TEST_CASE("union sampling: budget, always-include first, no duplicates") {
  const BucketTables tables = hand_built();
  ActiveSetSampler sampler(100, 1);
  std::vector<std::uint32_t> out;
  SampleConfig config;
  sampler.sample(tables, kBuckets, {}, config, out);
  CHECK(as_set(out) == std::set<std::uint32_t>{1, 2, 3, 10, 11, 12, 13});
  CHECK(no_duplicates(out));
  const std::vector<std::uint32_t> labels = {13, 99, 13};
  for (std::uint32_t budget : {1u, 2u, 3u, 5u, 7u, 20u}) {
    config.budget = budget;
    for (int rep = 0; rep < 20; ++rep) {
      sampler.sample(tables, kBuckets, labels, config, out);
      INFO("budget ", budget);
      REQUIRE(out.size() >= 2);
      CHECK(out[0] == 13);
      CHECK(out[1] == 99);
      CHECK(out.size() == std::max<std::size_t>(2, std::min<std::size_t>(budget, 8)));
      CHECK(no_duplicates(out));
      for (std::size_t i = 2; i < out.size(); ++i) CHECK(out[i] < 50);  // never the decoys
    }
  }
  // Tables are visited in random order: with budget 3 and no labels, ids only in table 1 (11)
  // or table 3 (13) sometimes come first.
  config.budget = 3;
  std::set<std::uint32_t> seen;
  for (int rep = 0; rep < 50; ++rep) {
    sampler.sample(tables, kBuckets, {}, config, out);
    seen.insert(out.begin(), out.end());
  }
  CHECK(seen.count(11) + seen.count(13) + seen.count(10) + seen.count(12) >= 2);
}

TEST_CASE("top-k and threshold sampling follow collision counts") {
  const BucketTables tables = hand_built();
  ActiveSetSampler sampler(100, 2);
  std::vector<std::uint32_t> out;
  SampleConfig config;
  config.strategy = SampleStrategy::kTopK;
  config.budget = 1;
  sampler.sample(tables, kBuckets, {}, config, out);
  CHECK(out == std::vector<std::uint32_t>{1});
  config.budget = 3;
  sampler.sample(tables, kBuckets, {}, config, out);
  CHECK(as_set(out) == std::set<std::uint32_t>{1, 2, 3});
  config.budget = 5;  // 1, 2, 3 and two of the ids seen once
  sampler.sample(tables, kBuckets, {}, config, out);
  CHECK(out.size() == 5);
  CHECK(no_duplicates(out));
  CHECK(as_set(out).count(1) + as_set(out).count(2) + as_set(out).count(3) == 3);
  const std::vector<std::uint32_t> label = {2};
  config.budget = 3;  // the label takes one slot; 1 and 3 fill the rest
  sampler.sample(tables, kBuckets, label, config, out);
  CHECK(out == std::vector<std::uint32_t>{2, 1, 3});

  config.strategy = SampleStrategy::kThreshold;
  config.budget = 0;
  config.min_count = 2;
  sampler.sample(tables, kBuckets, {}, config, out);
  CHECK(as_set(out) == std::set<std::uint32_t>{1, 2, 3});
  config.min_count = 3;
  sampler.sample(tables, kBuckets, {}, config, out);
  CHECK(as_set(out) == std::set<std::uint32_t>{1, 2});
  config.min_count = 5;
  sampler.sample(tables, kBuckets, {}, config, out);
  CHECK(out.empty());
  config.min_count = 2;
  config.budget = 2;  // over budget: the most frequent first
  sampler.sample(tables, kBuckets, {}, config, out);
  CHECK(as_set(out) == std::set<std::uint32_t>{1, 2});
}

TEST_CASE("top-k matches a brute-force count on random tables, across epoch wrap-around") {
  Rng rng(3);
  TableConfig tc;
  tc.bucket_capacity = 16;
  const std::uint32_t L = 12, neurons = 300;
  BucketTables tables(L, 3, tc);
  for (std::uint32_t t = 0; t < L; ++t)
    for (std::uint32_t b = 0; b < 8; ++b)
      for (std::uint32_t k = 0, n = rng.below(17); k < n; ++k)
        tables.insert(t, b, rng.below(neurons));
  ActiveSetSampler sampler(neurons, 4);
  std::vector<std::uint32_t> out, buckets(L);
  SampleConfig config;
  config.strategy = SampleStrategy::kTopK;
  // 70000 queries pass the 16-bit epoch wrap; check a sample of them in full.
  for (int q = 0; q < 70000; ++q) {
    for (auto& b : buckets) b = rng.below(8);
    config.budget = 1 + rng.below(40);
    sampler.sample(tables, buckets, {}, config, out);
    if (q % 97 != 0 && q < 65530) continue;
    std::map<std::uint32_t, std::uint32_t> count;
    for (std::uint32_t t = 0; t < L; ++t)
      for (std::uint32_t id : tables.bucket(t, buckets[t])) ++count[id];
    REQUIRE(no_duplicates(out));
    REQUIRE(out.size() == std::min<std::size_t>(config.budget, count.size()));
    std::uint32_t min_in = ~0u, max_out = 0;
    const auto chosen = as_set(out);
    for (auto [id, c] : count) {
      if (chosen.count(id))
        min_in = std::min(min_in, c);
      else
        max_out = std::max(max_out, c);
    }
    for (std::uint32_t id : out) REQUIRE(count.count(id) == 1);
    REQUIRE(min_in >= max_out);
  }
}

TEST_CASE("random fill tops up to exactly the budget") {
  const BucketTables tables = hand_built();
  for (std::uint32_t neurons : {100u, 12u}) {
    ActiveSetSampler sampler(neurons, 5);
    std::vector<std::uint32_t> out;
    SampleConfig config;
    config.fill_random = true;
    config.budget = neurons == 100 ? 40 : 12;  // 12: every neuron
    const std::vector<std::uint32_t> label = {0};
    const std::vector<std::uint32_t> empty_buckets = {2, 2, 2, 2};
    sampler.sample(tables, empty_buckets, label, config, out);
    CHECK(out.size() == config.budget);
    CHECK(no_duplicates(out));
    CHECK(out[0] == 0);
    for (std::uint32_t id : out) CHECK(id < neurons);
  }
}
