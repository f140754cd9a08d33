#include "hashing/active_set_sampler.h"

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace glide::hashing {

SampleStrategy parse_sample_strategy(std::string_view name) {
  if (name == "union") return SampleStrategy::kUnion;
  if (name == "topk") return SampleStrategy::kTopK;
  if (name == "threshold") return SampleStrategy::kThreshold;
  fail("sample strategy", "unknown strategy '" + std::string(name) + "' (union|topk|threshold)");
}

const char* sample_strategy_name(SampleStrategy strategy) {
  switch (strategy) {
    case SampleStrategy::kUnion:
      return "union";
    case SampleStrategy::kTopK:
      return "topk";
    case SampleStrategy::kThreshold:
      return "threshold";
  }
  return "?";
}

ActiveSetSampler::ActiveSetSampler(std::uint32_t num_neurons, std::uint64_t seed)
    : stamp_(num_neurons, 0), rng_(seed) {}

void ActiveSetSampler::next_epoch() {
  if (++epoch_ > 0xFFFF) {
    // Wrapped: stamps of 65535 queries ago would look current. Clearing costs O(neurons) once
    // per 65535 queries.
    std::fill(stamp_.begin(), stamp_.end(), 0u);
    epoch_ = 1;
  }
}

void ActiveSetSampler::shuffle_tables(std::uint32_t num_tables) {
  if (table_order_.size() != num_tables) {
    table_order_.resize(num_tables);
    for (std::uint32_t t = 0; t < num_tables; ++t) table_order_[t] = t;
  }
  for (std::uint32_t i = num_tables; i > 1; --i)
    std::swap(table_order_[i - 1], table_order_[rng_.below(i)]);
}

void ActiveSetSampler::sample(const BucketTables& tables, std::span<const std::uint32_t> buckets,
                              std::span<const std::uint32_t> always_include,
                              const SampleConfig& config, std::vector<std::uint32_t>& out) {
  out.clear();
  next_epoch();
  const std::size_t limit =
      config.budget == 0 ? std::numeric_limits<std::size_t>::max() : std::size_t{config.budget};
  if (limit != std::numeric_limits<std::size_t>::max()) out.reserve(limit + always_include.size());
  const std::uint32_t stamped = epoch_ << 16 | kCountMask;  // saturated: never counted again
  for (std::uint32_t id : always_include) {
    if (seen(id)) continue;
    stamp_[id] = stamped;
    out.push_back(id);
  }
  shuffle_tables(tables.num_tables());
  if (config.strategy == SampleStrategy::kUnion)
    sample_union(tables, buckets, limit, out);
  else
    sample_by_count(tables, buckets,
                    config.strategy == SampleStrategy::kTopK ? 1 : std::max(1u, config.min_count),
                    limit, out);
  if (config.fill_random && config.budget != 0)
    fill_random(std::min<std::size_t>(config.budget, stamp_.size()), out);
}

void ActiveSetSampler::sample_union(const BucketTables& tables,
                                    std::span<const std::uint32_t> buckets, std::size_t limit,
                                    std::vector<std::uint32_t>& out) {
  const std::uint32_t stamped = epoch_ << 16 | 1;
  for (std::uint32_t t : table_order_) {
    if (out.size() >= limit) return;
    for (std::uint32_t id : tables.bucket(t, buckets[t])) {
      if (seen(id)) continue;
      stamp_[id] = stamped;
      out.push_back(id);
      if (out.size() >= limit) return;
    }
  }
}

void ActiveSetSampler::sample_by_count(const BucketTables& tables,
                                       std::span<const std::uint32_t> buckets,
                                       std::uint32_t min_count, std::size_t limit,
                                       std::vector<std::uint32_t>& out) {
  candidates_.clear();
  const std::uint32_t first = epoch_ << 16 | 1;
  for (std::uint32_t t : table_order_) {
    for (std::uint32_t id : tables.bucket(t, buckets[t])) {
      std::uint32_t& s = stamp_[id];
      if ((s >> 16) != epoch_) {
        s = first;
        candidates_.push_back(id);
      } else if ((s & kCountMask) < kCountMask - 1) {
        ++s;  // always-include ids sit at kCountMask and stay there
      }
    }
  }
  const std::size_t room = limit > out.size() ? limit - out.size() : 0;
  // Counting sort by collision count: find the smallest count `cut` such that the ids seen in
  // more than `cut` tables fit in the room, then fill the rest with ids seen exactly `cut`
  // times, in first-seen (random table) order.
  const std::uint32_t max_count = std::min<std::uint32_t>(tables.num_tables(), kCountMask - 1);
  histogram_.assign(max_count + 2, 0);
  for (std::uint32_t id : candidates_) ++histogram_[stamp_[id] & kCountMask];
  std::uint32_t cut = max_count + 1;
  std::size_t above = 0;  // candidates with count >= cut
  while (cut > min_count && above + histogram_[cut - 1] <= room) above += histogram_[--cut];
  // Now every candidate with count >= cut fits; those with count cut-1 (if >= min_count) only
  // partly.
  std::size_t partial = cut > min_count ? room - above : 0;
  for (std::uint32_t id : candidates_) {
    const std::uint32_t c = stamp_[id] & kCountMask;
    if (c >= cut) {
      out.push_back(id);
    } else if (c + 1 == cut && partial > 0) {
      out.push_back(id);
      --partial;
    }
  }
}

void ActiveSetSampler::fill_random(std::size_t target, std::vector<std::uint32_t>& out) {
  const auto n = static_cast<std::uint32_t>(stamp_.size());
  const std::uint32_t stamped = epoch_ << 16 | 1;
  // Rejection sampling while most neurons are free; a scan from a random start past that, so a
  // budget close to the layer size cannot loop for long.
  std::size_t tries = 0;
  while (out.size() < target && tries < 4 * target) {
    ++tries;
    const std::uint32_t id = rng_.below(n);
    if (seen(id)) continue;
    stamp_[id] = stamped;
    out.push_back(id);
  }
  for (std::uint32_t k = 0, id = rng_.below(n); out.size() < target && k < n; ++k) {
    if (!seen(id)) {
      stamp_[id] = stamped;
      out.push_back(id);
    }
    id = id + 1 == n ? 0 : id + 1;
  }
}

}  // namespace glide::hashing
