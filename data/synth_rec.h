// Synthetic recommendation data: users' item histories over a catalogue with Zipf popularity and
// item clusters (tastes), turned into next-item samples: the most recent items (features, weighted
// by recency) -> the next items (labels). Feature and label ids are both item ids.
//
// Each user has two favourite clusters (clusters themselves are Zipf-popular). A history walks
// them: the next item stays in the current cluster with probability `affinity`, switches between
// the favourites otherwise, and with probability `noise` is a globally popular item. Within a
// cluster items are Zipf-popular too. Deterministic per (seed, user) like XcGenerator.
#pragma once
#include <cstdint>

#include "data/dataset.h"
#include "data/zipf.h"

namespace glide::data {

struct RecSynthConfig {
  std::uint64_t users = 20000;
  std::uint32_t items = 20000;
  std::uint32_t clusters = 200;
  double mean_history = 30;    // items per user history, on average
  double zipf_exponent = 1.0;  // item and cluster popularity ~ rank^-exponent
  double affinity = 0.8;       // probability of staying in the current cluster
  double noise = 0.1;          // probability of a globally popular item instead
  std::uint32_t window = 10;   // most recent items used as features
  std::uint32_t horizon = 2;   // next items used as labels
  std::uint32_t stride = 5;    // one sample every `stride` history positions
  std::uint64_t seed = 1;

  void check() const;
};

class RecGenerator {
 public:
  explicit RecGenerator(const RecSynthConfig& config);
  // The samples of users [first, first + count) of `stream` (0 train, 1 test), in user order.
  Dataset generate(std::uint64_t first, std::uint64_t count, std::uint64_t stream = 0,
                   int threads = 0) const;
  const RecSynthConfig& config() const { return config_; }
  // Item of cluster `cluster` with in-cluster popularity rank `rank`.
  std::uint32_t cluster_item(std::uint32_t cluster, std::uint32_t rank) const;

 private:
  void generate_user(std::uint64_t stream_seed, std::uint64_t user, Dataset& out) const;

  RecSynthConfig config_;
  std::uint32_t cluster_size_;
  ZipfSampler cluster_popularity_, in_cluster_, global_;
};

Dataset synth_rec(const RecSynthConfig& config, int threads = 0);

}  // namespace glide::data
