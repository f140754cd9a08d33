#include "hashing/lsh_index.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>

#include "common/error.h"
#include "common/rng.h"

namespace glide::hashing {

LshIndex::LshIndex(const HashConfig& hash, const TableConfig& tables)
    : hash_config_(hash), table_config_(tables) {
  family_ = make_hash_family(hash_config_);
}

LshIndex::~LshIndex() {
  join_worker();
}

void LshIndex::join_worker() {
  if (worker_.joinable()) worker_.join();
}

std::shared_ptr<const HashFamily> LshIndex::family_for(std::uint64_t generation,
                                                       bool redraw) const {
  if (!redraw) return family_;
  HashConfig config = hash_config_;
  config.seed = derive_seed(hash_config_.seed, 0x5EED0000ull + generation);
  return make_hash_family(config);
}

std::shared_ptr<const TableSet> LshIndex::build_table_set(std::shared_ptr<const HashFamily> family,
                                                          const TableConfig& config,
                                                          std::size_t num_rows, const RowFn& row,
                                                          std::uint64_t generation) {
  if (num_rows > 0xFFFFFFFFull) fail("lsh index", "more than 2^32 rows");
  auto set = std::make_shared<TableSet>();
  set->family = family;
  set->tables = BucketTables(family->num_tables(), family->range_pow(), config);
  set->generation = generation;
  set->num_rows = num_rows;
  const std::size_t L = family->num_tables();
  // Hash a chunk of rows in parallel, then insert it in parallel over tables (in row order
  // within each table, so the result does not depend on the thread count).
  const std::size_t chunk = std::clamp<std::size_t>((std::size_t{16} << 20) / L, 1024, 1 << 16);
  std::vector<std::uint32_t> buckets(std::min(chunk, num_rows) * L);
  for (std::size_t first = 0; first < num_rows; first += chunk) {
    const std::size_t n = std::min(chunk, num_rows - first);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 64),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                        for (std::size_t i = r.begin(); i < r.end(); ++i)
                          family->hash_dense(row(first + i), buckets.data() + i * L);
                      });
    set->tables.insert_rows(buckets.data(), n, static_cast<std::uint32_t>(first));
  }
  return set;
}

void LshIndex::build(std::size_t num_rows, const RowFn& row) {
  wait();
  current_.store(build_table_set(family_, table_config_, num_rows, row, next_generation_++),
                 std::memory_order_release);
}

void LshIndex::build(std::size_t num_rows, const float* base, std::size_t stride) {
  build(num_rows, [base, stride](std::size_t i) { return base + i * stride; });
}

void LshIndex::start_rebuild(std::size_t num_rows, RowFn row, bool redraw_hashes) {
  if (!poll()) fail("lsh index", "a rebuild is already running");
  join_worker();
  const std::uint64_t generation = next_generation_++;
  family_ = family_for(generation, redraw_hashes);
  worker_done_.store(false, std::memory_order_release);
  worker_ = std::thread([this, num_rows, row = std::move(row), generation, family = family_,
                         config = table_config_] {
    try {
      const int threads = config.rebuild_threads == 0 ? tbb::task_arena::automatic
                                                      : static_cast<int>(config.rebuild_threads);
      tbb::task_arena arena(threads);
      std::shared_ptr<const TableSet> set;
      arena.execute([&] { set = build_table_set(family, config, num_rows, row, generation); });
      current_.store(std::move(set), std::memory_order_release);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      error_ = std::current_exception();
    }
    worker_done_.store(true, std::memory_order_release);
  });
}

void LshIndex::start_rebuild(std::size_t num_rows, const float* base, std::size_t stride,
                             bool redraw_hashes) {
  start_rebuild(
      num_rows, [base, stride](std::size_t i) { return base + i * stride; }, redraw_hashes);
}

bool LshIndex::poll() {
  const bool done = worker_done_.load(std::memory_order_acquire);
  if (done) {
    join_worker();
    std::exception_ptr error;
    {
      std::lock_guard lock(error_mutex_);
      error = std::exchange(error_, nullptr);
    }
    if (error) std::rethrow_exception(error);
  }
  return done;
}

void LshIndex::wait() {
  join_worker();
  poll();
}

std::uint64_t LshIndex::generation() const {
  const auto set = snapshot();
  return set ? set->generation : 0;
}

std::size_t LshIndex::table_memory_bytes() const {
  return BucketTables::memory_bytes_for(family_->num_tables(), family_->range_pow(),
                                        table_config_.bucket_capacity);
}

namespace {
std::shared_ptr<const TableSet> require(std::shared_ptr<const TableSet> set) {
  if (!set) fail("lsh index", "queried before the first build");
  return set;
}
}  // namespace

std::shared_ptr<const TableSet> LshIndex::query_dense(const float* x,
                                                      std::uint32_t* buckets_out) const {
  auto set = require(snapshot());
  set->hash_dense(x, buckets_out);
  return set;
}

std::shared_ptr<const TableSet> LshIndex::query_sparse(data::SparseView x,
                                                       std::uint32_t* buckets_out) const {
  auto set = require(snapshot());
  set->hash_sparse(x, buckets_out);
  return set;
}

void LshIndex::sample_dense(const float* x, ActiveSetSampler& sampler, const SampleConfig& config,
                            std::span<const std::uint32_t> always_include,
                            std::vector<std::uint32_t>& out) const {
  std::uint32_t* buckets = thread_scratch<std::uint32_t, 7>(hash_config_.L);
  const auto set = query_dense(x, buckets);
  sampler.sample(set->tables, {buckets, hash_config_.L}, always_include, config, out);
}

void LshIndex::sample_sparse(data::SparseView x, ActiveSetSampler& sampler,
                             const SampleConfig& config,
                             std::span<const std::uint32_t> always_include,
                             std::vector<std::uint32_t>& out) const {
  std::uint32_t* buckets = thread_scratch<std::uint32_t, 7>(hash_config_.L);
  const auto set = query_sparse(x, buckets);
  sampler.sample(set->tables, {buckets, hash_config_.L}, always_include, config, out);
}

}  // namespace glide::hashing
