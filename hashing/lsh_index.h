// A layer's LSH index: a hash family plus the bucket tables built from the layer's weight rows,
// published as one immutable TableSet. Rebuilds (the weights drift during training, and hash
// functions may be redrawn) build a new TableSet aside, on a background thread, and swap it in
// atomically: a query holds a snapshot, so it always sees one complete table set and the family
// that built it, and training never waits for a rebuild.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "hashing/active_set_sampler.h"
#include "hashing/bucket_tables.h"
#include "hashing/hash_family.h"

namespace glide::hashing {

// What one build produced. Never modified once published.
struct TableSet {
  std::shared_ptr<const HashFamily> family;
  BucketTables tables;
  std::uint64_t generation = 0;  // 1 for the first build, +1 per rebuild
  std::size_t num_rows = 0;

  void hash_dense(const float* x, std::uint32_t* buckets_out) const {
    family->hash_dense(x, buckets_out);
  }
  void hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const {
    family->hash_sparse(x, buckets_out);
  }
};

class LshIndex {
 public:
  // Row i of the layer: dim() floats, valid until the build that asked for it has finished or,
  // at least, until the next call of the function on the same thread (each row is hashed at
  // once, so a function may expand rows into a per-thread buffer).
  using RowFn = std::function<const float*(std::size_t)>;

  LshIndex(const HashConfig& hash, const TableConfig& tables);
  ~LshIndex();  // waits for a running rebuild
  LshIndex(const LshIndex&) = delete;
  LshIndex& operator=(const LshIndex&) = delete;

  // Builds tables over rows 0..num_rows-1 and publishes them before returning (uses all oneTBB
  // threads). Waits for a running rebuild first.
  void build(std::size_t num_rows, const RowFn& row);
  void build(std::size_t num_rows, const float* base, std::size_t stride);

  // Starts building a new table set on a background thread and returns at once; the new set is
  // published when complete. redraw_hashes: the new set uses a new hash family (seed derived from
  // the configured seed and the generation). Rows are read while training may update them; a
  // row read mid-update just hashes a slightly stale mix, which LSH tolerates. Throws if a
  // rebuild is already running.
  void start_rebuild(std::size_t num_rows, RowFn row, bool redraw_hashes = false);
  void start_rebuild(std::size_t num_rows, const float* base, std::size_t stride,
                     bool redraw_hashes = false);
  // True when no rebuild is running (the last one has been published). Rethrows a rebuild error.
  bool poll();
  // Blocks until the running rebuild (if any) is published. Rethrows a rebuild error.
  void wait();

  // The current table set (null before the first build). Take one per batch and query through
  // it: its family and tables always match.
  std::shared_ptr<const TableSet> snapshot() const {
    return current_.load(std::memory_order_acquire);
  }
  std::uint64_t generation() const;

  // Conveniences that take a snapshot per call: hash x into buckets (L ids) and/or sample.
  std::shared_ptr<const TableSet> query_dense(const float* x, std::uint32_t* buckets_out) const;
  std::shared_ptr<const TableSet> query_sparse(data::SparseView x,
                                               std::uint32_t* buckets_out) const;
  void sample_dense(const float* x, ActiveSetSampler& sampler, const SampleConfig& config,
                    std::span<const std::uint32_t> always_include,
                    std::vector<std::uint32_t>& out) const;
  void sample_sparse(data::SparseView x, ActiveSetSampler& sampler, const SampleConfig& config,
                     std::span<const std::uint32_t> always_include,
                     std::vector<std::uint32_t>& out) const;

  const HashConfig& hash_config() const { return hash_config_; }
  const TableConfig& table_config() const { return table_config_; }
  // Bytes of one table set; a rebuild holds two for a while.
  std::size_t table_memory_bytes() const;

  // Builds a complete table set (used by build and the background rebuild; exposed for
  // benchmarks). Hashes rows in chunks so the bucket ids in flight stay small (~64 MB).
  static std::shared_ptr<const TableSet> build_table_set(std::shared_ptr<const HashFamily> family,
                                                         const TableConfig& config,
                                                         std::size_t num_rows, const RowFn& row,
                                                         std::uint64_t generation);

 private:
  std::shared_ptr<const HashFamily> family_for(std::uint64_t generation, bool redraw) const;
  void join_worker();

  HashConfig hash_config_;
  TableConfig table_config_;
  std::shared_ptr<const HashFamily> family_;  // the family of the last build started
  std::atomic<std::shared_ptr<const TableSet>> current_;
  std::uint64_t next_generation_ = 1;
  std::thread worker_;
  std::atomic<bool> worker_done_{true};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace glide::hashing
