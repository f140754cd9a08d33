#include "hashing/bucket_tables.h"

#include <sys/mman.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <new>
#include <utility>

#include "common/error.h"

namespace glide::hashing {

MappedBlock::MappedBlock(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  // Random bucket reads run faster on 2 MB pages; a refusal is harmless (4 KB pages then).
  if (bytes >= (std::size_t{4} << 20)) madvise(p, bytes, MADV_HUGEPAGE);
  data_ = p;
}

MappedBlock::MappedBlock(MappedBlock&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

MappedBlock& MappedBlock::operator=(MappedBlock&& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(bytes_, o.bytes_);
  return *this;
}

MappedBlock::~MappedBlock() {
  if (data_) munmap(data_, bytes_);
}

InsertPolicy parse_insert_policy(std::string_view name) {
  if (name == "fifo") return InsertPolicy::kFifo;
  if (name == "reservoir") return InsertPolicy::kReservoir;
  fail("insert policy", "unknown insert policy '" + std::string(name) + "' (fifo|reservoir)");
}

const char* insert_policy_name(InsertPolicy policy) {
  return policy == InsertPolicy::kFifo ? "fifo" : "reservoir";
}

BucketTables::BucketTables(std::uint32_t num_tables, std::uint32_t range_pow,
                           const TableConfig& config)
    : num_tables_(num_tables),
      range_pow_(range_pow),
      capacity_(config.bucket_capacity),
      policy_(config.policy) {
  if (num_tables == 0 || range_pow > 30 || capacity_ == 0)
    fail("table config", "need L >= 1, range_pow <= 30 and bucket_capacity >= 1");
  const std::size_t buckets = std::size_t{num_tables} << range_pow;
  const std::size_t ids_offset = (buckets * sizeof(std::uint32_t) + 63) / 64 * 64;
  block_ = MappedBlock(ids_offset + buckets * capacity_ * sizeof(std::uint32_t));
  counts_ = static_cast<std::uint32_t*>(block_.data());
  ids_ = reinterpret_cast<std::uint32_t*>(static_cast<char*>(block_.data()) + ids_offset);
  table_rng_.reserve(num_tables);
  for (std::uint32_t t = 0; t < num_tables; ++t)
    table_rng_.emplace_back(derive_seed(config.seed, t));
}

BucketTables::BucketTables(BucketTables&& o) noexcept
    : num_tables_(std::exchange(o.num_tables_, 0)),
      range_pow_(std::exchange(o.range_pow_, 0)),
      capacity_(std::exchange(o.capacity_, 0)),
      policy_(o.policy_),
      block_(std::move(o.block_)),
      counts_(std::exchange(o.counts_, nullptr)),
      ids_(std::exchange(o.ids_, nullptr)),
      table_rng_(std::move(o.table_rng_)) {}

BucketTables& BucketTables::operator=(BucketTables&& o) noexcept {
  BucketTables taken(std::move(o));
  std::swap(num_tables_, taken.num_tables_);
  std::swap(range_pow_, taken.range_pow_);
  std::swap(capacity_, taken.capacity_);
  std::swap(policy_, taken.policy_);
  std::swap(block_, taken.block_);
  std::swap(counts_, taken.counts_);
  std::swap(ids_, taken.ids_);
  std::swap(table_rng_, taken.table_rng_);
  return *this;
}

std::size_t BucketTables::memory_bytes_for(std::uint32_t num_tables, std::uint32_t range_pow,
                                           std::uint32_t capacity) {
  const std::size_t buckets = std::size_t{num_tables} << range_pow;
  return buckets * (std::size_t{capacity} + 1) * sizeof(std::uint32_t);
}

void BucketTables::insert(std::uint32_t table, std::uint32_t bucket, std::uint32_t id) {
  const std::size_t b = index(table, bucket);
  std::uint32_t* slots = ids_ + b * capacity_;
  const std::uint32_t seen = counts_[b];
  if (seen < capacity_) {
    slots[seen] = id;
  } else if (policy_ == InsertPolicy::kFifo) {
    slots[seen % capacity_] = id;  // the slot of the oldest id still held
  } else {
    // Algorithm R: the (seen+1)-th id is kept with probability capacity/(seen+1), replacing a
    // uniformly chosen one, so every id inserted so far is held with equal probability.
    const std::uint32_t j = table_rng_[table].below(seen + 1);
    if (j < capacity_) slots[j] = id;
  }
  if (seen != 0xFFFFFFFFu) counts_[b] = seen + 1;
}

void BucketTables::insert_rows(const std::uint32_t* buckets, std::size_t num_rows,
                               std::uint32_t first_id) {
  const std::size_t L = num_tables_;
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_tables_),
                    [&](const tbb::blocked_range<std::uint32_t>& r) {
                      for (std::uint32_t t = r.begin(); t < r.end(); ++t)
                        for (std::size_t i = 0; i < num_rows; ++i)
                          insert(t, buckets[i * L + t], first_id + static_cast<std::uint32_t>(i));
                    });
}

void BucketTables::clear() {
  std::fill(counts_, counts_ + (std::size_t{num_tables_} << range_pow_), 0u);
}

}  // namespace glide::hashing
