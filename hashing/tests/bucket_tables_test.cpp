#include <doctest/doctest.h>

#include <tbb/task_arena.h>

#include <algorithm>
#include <set>
#include <vector>

#include "common/rng.h"
#include "hashing/bucket_tables.h"

using namespace glide;
using namespace glide::hashing;

namespace {
TableConfig table_config(std::uint32_t capacity, InsertPolicy policy, std::uint64_t seed = 1) {
  TableConfig c;
  c.bucket_capacity = capacity;
  c.policy = policy;
  c.seed = seed;
  return c;
}
std::vector<std::uint32_t> sorted(std::span<const std::uint32_t> s) {
  std::vector<std::uint32_t> v(s.begin(), s.end());
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

TEST_CASE("FIFO buckets keep exactly the last `capacity` ids inserted") {
  BucketTables tables(3, 4, table_config(32, InsertPolicy::kFifo));
  for (std::uint32_t id = 0; id < 20; ++id) tables.insert(1, 5, id);
  CHECK(sorted(tables.bucket(1, 5)) == [] {
    std::vector<std::uint32_t> v(20);
    for (std::uint32_t i = 0; i < 20; ++i) v[i] = i;
    return v;
  }());
  for (std::uint32_t id = 20; id < 1000; ++id) tables.insert(1, 5, id);
  std::vector<std::uint32_t> last(32);
  for (std::uint32_t i = 0; i < 32; ++i) last[i] = 968 + i;
  CHECK(sorted(tables.bucket(1, 5)) == last);
  CHECK(tables.times_inserted(1, 5) == 1000);
  CHECK(tables.bucket(0, 5).empty());
  CHECK(tables.bucket(1, 4).empty());
  CHECK(tables.bucket(2, 5).empty());
  tables.clear();
  CHECK(tables.bucket(1, 5).empty());
  CHECK(BucketTables::memory_bytes_for(50, 16, 32) == std::size_t{50} * 65536 * 33 * 4);
}

TEST_CASE("reservoir buckets keep a uniform sample of everything inserted") {
  const std::uint32_t capacity = 8, inserted = 64, trials = 2000;
  std::vector<std::uint32_t> kept(inserted, 0);
  for (std::uint32_t trial = 0; trial < trials; ++trial) {
    BucketTables tables(1, 1, table_config(capacity, InsertPolicy::kReservoir, 100 + trial));
    for (std::uint32_t id = 0; id < inserted; ++id) tables.insert(0, 1, id);
    const auto bucket = tables.bucket(0, 1);
    REQUIRE(bucket.size() == capacity);
    REQUIRE(std::set<std::uint32_t>(bucket.begin(), bucket.end()).size() == capacity);
    for (std::uint32_t id : bucket) ++kept[id];
  }
  // Each id is kept with probability 1/8: 250 of 2000 trials, standard deviation ~14.8.
  double chi2 = 0;
  for (std::uint32_t id = 0; id < inserted; ++id) {
    INFO("id ", id);
    CHECK(kept[id] > 250 - 75);
    CHECK(kept[id] < 250 + 75);
    chi2 += (kept[id] - 250.0) * (kept[id] - 250.0) / (250.0 * 7 / 8);
  }
  // 63 degrees of freedom: the 99.9% quantile is ~104. FIFO would put everything on the last 8.
  CHECK(chi2 < 104);
}

TEST_CASE("parallel inserts give the same tables for any thread count") {
  const std::uint32_t L = 16, rows = 5000;
  Rng rng(9);
  std::vector<std::uint32_t> buckets(std::size_t{rows} * L);
  for (auto& b : buckets) b = rng.below(64);  // 6-bit buckets: ~78 ids each, so buckets overflow
  for (InsertPolicy policy : {InsertPolicy::kFifo, InsertPolicy::kReservoir}) {
    BucketTables one(L, 6, table_config(16, policy, 5)), many(L, 6, table_config(16, policy, 5));
    tbb::task_arena(1).execute([&] { one.insert_rows(buckets.data(), rows, 0); });
    tbb::task_arena(4).execute([&] { many.insert_rows(buckets.data(), rows, 0); });
    for (std::uint32_t t = 0; t < L; ++t)
      for (std::uint32_t b = 0; b < 64; ++b) {
        const auto x = one.bucket(t, b), y = many.bucket(t, b);
        REQUIRE(std::equal(x.begin(), x.end(), y.begin(), y.end()));
      }
  }
}
