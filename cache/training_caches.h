// Learned caches trained alongside the model during `glide train`: after each batch, a few of its
// rows (a seeded random sample) go through the updated network once more; their hidden
// activations at each cached layer train that layer's cache toward the model's own exact top-1
// over every label (not the ground truth: the cache must agree with the model it stands in front
// of). Before each example trains a cache, the cache's current answer for it is recorded
// (prequential: every record is a prediction on an example the cache had not yet seen); the
// recent records set the saved threshold (calibrate_threshold()), so a server loading the file
// starts warm with a threshold that already met the agreement target on unseen examples.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cache/cache_file.h"
#include "cache/learned_cache.h"
#include "common/rng.h"
#include "data/dataset.h"
#include "engine/network.h"

namespace glide::cache {

struct TrainingCacheOptions {
  std::vector<std::uint32_t> layers;  // hidden layers with a cache; empty: the last one
  CacheOptions cache;
  double target = 0.99;              // agreement of hits the saved threshold is chosen for
  std::uint32_t rows_per_batch = 8;  // rows of each batch that train the caches (0: all)
  std::size_t records = 8192;        // recent (confidence, agreed) records per cache
  std::uint64_t seed = 1;
};

class TrainingCaches {
 public:
  // `warm`: caches to continue (train --resume of a file with caches).
  TrainingCaches(const engine::Network& net, TrainingCacheOptions options,
                 const CacheStates& warm = {});
  // After a training batch (engine::FitOptions::on_batch): trains on a sample of its rows.
  void on_batch(std::span<const data::SparseView> inputs);
  // The caches with calibrated thresholds, to save with the model.
  CacheStates states() const;

  struct LayerReport {
    std::uint32_t layer = 0;
    std::uint64_t examples = 0;
    std::size_t hot = 0, records = 0, hits = 0, agreed = 0;  // at the calibrated threshold
    double threshold = 0;
  };
  std::vector<LayerReport> report() const;
  double seconds() const { return seconds_; }  // time spent in on_batch
  std::uint64_t rows() const { return rows_; }

 private:
  struct Slot {
    std::uint32_t layer;
    std::unique_ptr<CacheTrainer> trainer;
    std::vector<CalibrationRecord> records;  // ring buffer of hot lookups
    std::size_t next = 0;
  };
  const engine::Network& net_;
  TrainingCacheOptions options_;
  std::vector<Slot> slots_;
  Rng rng_;
  double seconds_ = 0;
  std::uint64_t rows_ = 0;
  engine::HiddenActivations acts_;
  std::vector<data::SparseView> picked_;
  std::vector<float> scratch_;
};

}  // namespace glide::cache
