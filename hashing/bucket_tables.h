// L hash tables of 2^range_pow buckets, each bucket a fixed-capacity array of neuron ids, all in
// one contiguous allocation: a query reads L short contiguous runs and nothing is ever allocated
// after construction. The allocation is a private memory mapping, not a heap block, so dropping
// the tables (a served model reloaded, a rebuilt set replacing the old one) returns the memory to
// the system at once: heap blocks of these sizes stayed with the allocator, and a server
// reloading a model grew by megabytes per reload.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/rng.h"

namespace glide::hashing {

enum class InsertPolicy {
  kFifo,       // a full bucket replaces its oldest id: keeps the last `capacity` inserted
  kReservoir,  // reservoir sampling: keeps a uniform sample of everything inserted
};
InsertPolicy parse_insert_policy(std::string_view name);  // "fifo" | "reservoir"
const char* insert_policy_name(InsertPolicy policy);

struct TableConfig {
  // Ids kept per bucket. With range_pow 15 and 670k neurons a bucket receives ~20 ids on average,
  // so 32 keeps most buckets whole while capping what one query reads (L*32 ids) and the memory
  // (L x 2^range_pow x (capacity+1) x 4 bytes: 216 MB for L=50).
  std::uint32_t bucket_capacity = 32;
  InsertPolicy policy = InsertPolicy::kFifo;
  std::uint64_t seed = 1;  // reservoir sampling draws
  // Threads a background rebuild may use (0: as many as oneTBB has). Lower it to leave cores to
  // training while tables rebuild.
  std::uint32_t rebuild_threads = 0;
};

// Zero-filled memory of its own mapping (2 MB huge pages advised when large), unmapped when
// destroyed. Move-only.
class MappedBlock {
 public:
  MappedBlock() = default;
  explicit MappedBlock(std::size_t bytes);  // throws std::bad_alloc
  MappedBlock(MappedBlock&& o) noexcept;
  MappedBlock& operator=(MappedBlock&& o) noexcept;
  ~MappedBlock();
  void* data() const { return data_; }
  std::size_t size() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

class BucketTables {
 public:
  BucketTables() = default;
  BucketTables(std::uint32_t num_tables, std::uint32_t range_pow, const TableConfig& config);
  BucketTables(BucketTables&& o) noexcept;
  BucketTables& operator=(BucketTables&& o) noexcept;

  std::uint32_t num_tables() const { return num_tables_; }
  std::uint32_t range_pow() const { return range_pow_; }
  std::uint32_t capacity() const { return capacity_; }
  InsertPolicy policy() const { return policy_; }

  // The ids currently held by a bucket (FIFO: in ring order, not insertion order).
  std::span<const std::uint32_t> bucket(std::uint32_t table, std::uint32_t bucket) const {
    const std::size_t b = index(table, bucket);
    const std::uint32_t n = counts_[b] < capacity_ ? counts_[b] : capacity_;
    return {ids_ + b * capacity_, n};
  }
  // How many ids were ever inserted into a bucket (>= its size).
  std::uint32_t times_inserted(std::uint32_t table, std::uint32_t bucket) const {
    return counts_[index(table, bucket)];
  }

  // Inserts `id` into one bucket. Calls for different tables may run concurrently; calls for one
  // table must not.
  void insert(std::uint32_t table, std::uint32_t bucket, std::uint32_t id);
  // Inserts rows first_id .. first_id+n-1, whose buckets are buckets[r*L .. r*L+L), in parallel
  // over tables. Within a table ids go in ascending order, so the result (reservoir draws
  // included) does not depend on the number of threads.
  void insert_rows(const std::uint32_t* buckets, std::size_t num_rows, std::uint32_t first_id);
  void clear();

  std::size_t memory_bytes() const { return memory_bytes_for(num_tables_, range_pow_, capacity_); }
  static std::size_t memory_bytes_for(std::uint32_t num_tables, std::uint32_t range_pow,
                                      std::uint32_t capacity);

 private:
  std::size_t index(std::uint32_t table, std::uint32_t bucket) const {
    return (std::size_t{table} << range_pow_) + bucket;
  }

  std::uint32_t num_tables_ = 0, range_pow_ = 0, capacity_ = 0;
  InsertPolicy policy_ = InsertPolicy::kFifo;
  // One block: counts_ (insertions per bucket), then ids_ ((L << range_pow) buckets x capacity,
  // 64-byte aligned). The pointers stay valid when the block moves (the mapping does not).
  MappedBlock block_;
  std::uint32_t* counts_ = nullptr;
  std::uint32_t* ids_ = nullptr;
  std::vector<Rng> table_rng_;  // reservoir draws, one stream per table
};

}  // namespace glide::hashing
