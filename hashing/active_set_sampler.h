// Turns a query's L bucket ids into the set of active neurons to compute, under a budget.
// One sampler per worker thread, sized to the layer: deduplication uses a stamp per neuron
// (epoch in the high 16 bits, collision count in the low 16) instead of a hash set, so sampling
// never allocates once the caller's output vector has grown to the budget.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/rng.h"
#include "hashing/bucket_tables.h"

namespace glide::hashing {

enum class SampleStrategy {
  kUnion,      // ids of the buckets, tables in random order, until the budget is reached
  kTopK,       // the `budget` ids found in the most tables
  kThreshold,  // ids found in at least `min_count` tables (most frequent first if over budget)
};
SampleStrategy parse_sample_strategy(std::string_view name);  // "union" | "topk" | "threshold"
const char* sample_strategy_name(SampleStrategy strategy);

struct SampleConfig {
  SampleStrategy strategy = SampleStrategy::kUnion;
  // Most ids returned, always-include ids counted (0: no limit). Always-include ids are never
  // dropped, so a query with more of them than the budget returns exactly those.
  std::uint32_t budget = 0;
  std::uint32_t min_count = 2;  // kThreshold
  bool fill_random = false;     // top up with uniformly random neurons to exactly the budget
};

class ActiveSetSampler {
 public:
  ActiveSetSampler(std::uint32_t num_neurons, std::uint64_t seed);

  // Writes the active ids into `out` (cleared first; its capacity is reused across calls):
  // always_include first, in their order, then the sampled ids, without duplicates. buckets holds
  // one bucket id per table of `tables`. Ids in always_include must be below num_neurons().
  void sample(const BucketTables& tables, std::span<const std::uint32_t> buckets,
              std::span<const std::uint32_t> always_include, const SampleConfig& config,
              std::vector<std::uint32_t>& out);

  std::uint32_t num_neurons() const { return static_cast<std::uint32_t>(stamp_.size()); }

  // Restarts the random choices (table order, random top-up) from `seed`, so a query seeded by
  // its own content samples the same set wherever it runs.
  void reseed(std::uint64_t seed) {
    rng_.reseed(seed);
    table_order_.clear();
  }

 private:
  static constexpr std::uint32_t kCountMask = 0xFFFF;
  void next_epoch();
  bool seen(std::uint32_t id) const { return (stamp_[id] >> 16) == epoch_; }
  void shuffle_tables(std::uint32_t num_tables);
  void sample_union(const BucketTables& tables, std::span<const std::uint32_t> buckets,
                    std::size_t limit, std::vector<std::uint32_t>& out);
  void sample_by_count(const BucketTables& tables, std::span<const std::uint32_t> buckets,
                       std::uint32_t min_count, std::size_t limit, std::vector<std::uint32_t>& out);
  void fill_random(std::size_t target, std::vector<std::uint32_t>& out);

  std::vector<std::uint32_t> stamp_;  // per neuron: epoch << 16 | count
  std::uint32_t epoch_ = 0;           // 1..0xFFFF
  std::vector<std::uint32_t> table_order_;
  std::vector<std::uint32_t> candidates_;  // first-seen order
  std::vector<std::uint32_t> histogram_;   // candidates per count
  Rng rng_;
};

}  // namespace glide::hashing
