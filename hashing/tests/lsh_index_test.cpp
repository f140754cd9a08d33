#include <doctest/doctest.h>

#include <tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <numbers>
#include <set>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "hashing/lsh_index.h"
#include "hashing/tests/test_util.h"

using namespace glide;
using namespace glide::hashing;

namespace {

std::vector<float> random_rows(Rng& rng, std::uint32_t rows, std::uint32_t dim) {
  std::vector<float> w;
  w.reserve(std::size_t{rows} * dim);
  for (std::uint32_t r = 0; r < rows; ++r) {
    const auto v = test::random_unit(rng, dim);
    w.insert(w.end(), v.begin(), v.end());
  }
  return w;
}

HashConfig hash_config(HashKind kind, std::uint32_t dim, std::uint32_t K, std::uint32_t L,
                       std::uint32_t range_pow) {
  HashConfig c;
  c.kind = kind;
  c.dim = dim;
  c.K = K;
  c.L = L;
  c.range_pow = range_pow;
  return c;
}

bool bucket_has(const BucketTables& tables, std::uint32_t t, std::uint32_t b, std::uint32_t id) {
  for (std::uint32_t x : tables.bucket(t, b))
    if (x == id) return true;
  return false;
}

}  // namespace

TEST_CASE("an inserted vector is found by its own query in every table that did not overflow") {
  Rng rng(1);
  const std::uint32_t dim = 64, rows = 2000;
  const auto w = random_rows(rng, rows, dim);
  for (HashKind kind : {HashKind::kSimHash, HashKind::kWta, HashKind::kDwta, HashKind::kDoph}) {
    INFO(hash_kind_name(kind));
    TableConfig tc;
    tc.bucket_capacity = 16;
    LshIndex index(hash_config(kind, dim, kind == HashKind::kSimHash ? 10 : 4, 20, 12), tc);
    CHECK_THROWS_AS(index.query_dense(w.data(), nullptr), Error);  // before the first build
    index.build(rows, w.data(), dim);
    std::vector<std::uint32_t> buckets(20);
    std::size_t checked = 0;
    for (std::uint32_t r = 0; r < rows; ++r) {
      const auto set = index.query_dense(w.data() + std::size_t{r} * dim, buckets.data());
      for (std::uint32_t t = 0; t < 20; ++t) {
        if (set->tables.times_inserted(t, buckets[t]) > tc.bucket_capacity) continue;
        ++checked;
        REQUIRE(bucket_has(set->tables, t, buckets[t], r));
      }
    }
    CHECK(checked > rows * 20 / 2);  // most buckets did not overflow, so this tested something
  }
}

TEST_CASE("a near neighbour is retrieved with probability 1 - (1 - p^K)^L") {
  Rng rng(2);
  const std::uint32_t dim = 128, rows = 600, K = 5, L = 3;
  const double angle = 0.5;
  HashConfig hc = hash_config(HashKind::kSimHash, dim, K, L, 16);
  hc.sparse_ratio = 1;  // dense +-1 projections: p = 1 - angle/pi holds closely
  TableConfig tc;
  tc.bucket_capacity = 128;  // 2^5 buckets x 128 > 600 rows: nothing is evicted
  LshIndex index(hc, tc);
  const auto w = random_rows(rng, rows, dim);
  index.build(rows, w.data(), dim);
  ActiveSetSampler sampler(rows, 1);
  std::vector<std::uint32_t> out;
  std::size_t found = 0;
  for (std::uint32_t r = 0; r < rows; ++r) {
    const std::vector<float> row(w.begin() + std::size_t{r} * dim,
                                 w.begin() + std::size_t{r + 1} * dim);
    const auto q = test::at_angle(rng, row, angle);
    index.sample_dense(q.data(), sampler, SampleConfig{}, {}, out);
    found += std::find(out.begin(), out.end(), r) != out.end();
  }
  const double p = 1.0 - angle / std::numbers::pi;
  const double expected = 1.0 - std::pow(1.0 - std::pow(p, K), L);  // ~0.79
  // Standard error over 600 rows ~0.017.
  CHECK(static_cast<double>(found) / rows == doctest::Approx(expected).epsilon(0.08));
}

TEST_CASE("same seed gives the same tables for any thread count; another seed differs") {
  Rng rng(3);
  const std::uint32_t dim = 32, rows = 3000;
  const auto w = random_rows(rng, rows, dim);
  TableConfig tc;
  tc.bucket_capacity = 8;
  tc.policy = InsertPolicy::kReservoir;
  HashConfig hc = hash_config(HashKind::kDwta, dim, 3, 12, 9);
  LshIndex a(hc, tc), b(hc, tc);
  hc.seed = 2;
  LshIndex c(hc, tc);
  tbb::task_arena(1).execute([&] { a.build(rows, w.data(), dim); });
  tbb::task_arena(4).execute([&] { b.build(rows, w.data(), dim); });
  c.build(rows, w.data(), dim);
  const auto sa = a.snapshot(), sb = b.snapshot(), sc = c.snapshot();
  bool all_same = true, any_differs = false;
  for (std::uint32_t t = 0; t < 12; ++t)
    for (std::uint32_t k = 0; k < (1u << 9); ++k) {
      const auto x = sa->tables.bucket(t, k), y = sb->tables.bucket(t, k),
                 z = sc->tables.bucket(t, k);
      all_same &= std::equal(x.begin(), x.end(), y.begin(), y.end());
      any_differs |= !std::equal(x.begin(), x.end(), z.begin(), z.end());
    }
  CHECK(all_same);
  CHECK(any_differs);
  CHECK(a.table_memory_bytes() == BucketTables::memory_bytes_for(12, 9, 8));
}

TEST_CASE("rebuild-and-swap while other threads query") {
  Rng rng(4);
  const std::uint32_t dim = 32, max_rows = 4000, L = 8;
  const auto w = random_rows(rng, max_rows, dim);
  TableConfig tc;
  tc.bucket_capacity = 256;  // 64 buckets x 256 > 4000 rows: nothing is evicted
  tc.rebuild_threads = 1;
  LshIndex index(hash_config(HashKind::kSimHash, dim, 6, L, 6), tc);
  index.build(1000, w.data(), dim);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::set<std::uint64_t>> generations(2);
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      Rng local(10 + r);
      ActiveSetSampler sampler(max_rows, r);
      std::vector<std::uint32_t> buckets(L), out;
      while (!stop.load()) {
        const std::uint32_t row = local.below(1000);
        const auto set = index.query_dense(w.data() + std::size_t{row} * dim, buckets.data());
        generations[r].insert(set->generation);
        // A complete set: every row in every table (nothing evicted at this size), rows
        // 1000 * generation in total, and the query finds its own row.
        std::uint64_t total = 0;
        for (std::uint32_t t = 0; t < L; ++t)
          for (std::uint32_t b = 0; b < 64; ++b) total += set->tables.times_inserted(t, b);
        sampler.sample(set->tables, buckets, {}, SampleConfig{}, out);
        const bool found = std::find(out.begin(), out.end(), row) != out.end();
        if (total != set->num_rows * L || set->num_rows != 1000 * set->generation || !found)
          failures.fetch_add(1);
        for (std::uint32_t id : out)
          if (id >= set->num_rows) failures.fetch_add(1);
      }
    });
  }
  for (std::uint64_t g = 2; g <= 4; ++g) {
    // The rebuild reads its rows only once released, so it is surely still running when the
    // second start is tried (a fast machine used to finish it first). The gate also opens after
    // 30 s, so a second start that waited for the first instead of refusing fails, not hangs.
    std::atomic<bool> released{false};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const LshIndex::RowFn gated_row = [&](std::size_t i) {
      while (!released.load() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
      return w.data() + i * dim;
    };
    index.start_rebuild(1000 * g, gated_row, /*redraw_hashes=*/g % 2 == 0);
    CHECK_FALSE(index.poll());
    CHECK_THROWS_AS(index.start_rebuild(1000 * g, w.data(), dim), Error);
    released = true;
    index.wait();
    CHECK(index.poll());
    CHECK(index.generation() == g);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(failures.load() == 0);
  CHECK(generations[0].size() + generations[1].size() >= 4);
}
