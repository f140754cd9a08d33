#include "hashing/bucket_tables.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "common/error.h"

namespace glide::hashing {

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
  ids_ = AlignedArray<std::uint32_t>(buckets * capacity_);
  counts_ = AlignedArray<std::uint32_t>(buckets);
  table_rng_.reserve(num_tables);
  for (std::uint32_t t = 0; t < num_tables; ++t)
    table_rng_.emplace_back(derive_seed(config.seed, t));
}

std::size_t BucketTables::memory_bytes_for(std::uint32_t num_tables, std::uint32_t range_pow,
                                           std::uint32_t capacity) {
  const std::size_t buckets = std::size_t{num_tables} << range_pow;
  return buckets * (std::size_t{capacity} + 1) * sizeof(std::uint32_t);
}

void BucketTables::insert(std::uint32_t table, std::uint32_t bucket, std::uint32_t id) {
  const std::size_t b = index(table, bucket);
  std::uint32_t* slots = ids_.data() + b * capacity_;
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
  for (auto& c : counts_) c = 0;
}

}  // namespace glide::hashing
