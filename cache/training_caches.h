// Learned caches trained alongside the model during `glide train`: after each batch, a few of its
// rows (a seeded random sample) go through the updated network once more; their hidden
// activations at each cached layer train that layer's cache toward the model's own exact top-1
// over every label (not the ground truth: the cache must agree with the model it stands in front
// of). That extra pass is the cost: batches are skipped while the caches' time exceeds
// `time_budget` of the training time so far, so training slows by at most that share.
//
// A fixed ~1/64 of the training points (by address) never trains the caches; a reservoir of them
// calibrates the saved thresholds at the end against the final network (states()), so a server
// loading the file starts with thresholds measured on examples the caches had not seen.
#pragma once
#include <chrono>
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
  double target = 0.99;               // agreement of hits the saved threshold is chosen for
  std::uint32_t rows_per_batch = 64;  // rows of each batch that train the caches (0: all)
  double time_budget = 0.02;   // most of the training time spent on the caches (>= 1: no cap)
  std::size_t held_out = 512;  // held-out rows kept to calibrate the thresholds
  std::uint64_t seed = 1;
};

class TrainingCaches {
 public:
  // `warm`: caches to continue (train --resume of a file with caches).
  TrainingCaches(const engine::Network& net, TrainingCacheOptions options,
                 const CacheStates& warm = {});
  // After a training batch (engine::FitOptions::on_batch): trains on a sample of its rows.
  void on_batch(std::span<const data::SparseView> inputs);
  // The caches with thresholds calibrated on the held-out rows through the current network, to
  // save with the model (costs one full pass per held-out row).
  CacheStates states();

  struct LayerReport {
    std::uint32_t layer = 0;
    std::uint64_t examples = 0;
    // Of the held-out rows at the last states(): how many, hits at the threshold, agreeing hits.
    std::size_t hot = 0, records = 0, hits = 0, agreed = 0;
    double threshold = 0;
  };
  std::vector<LayerReport> report() const;
  double seconds() const { return seconds_; }  // time spent in on_batch
  std::uint64_t rows() const { return rows_; }

 private:
  struct Slot {
    std::uint32_t layer;
    std::unique_ptr<CacheTrainer> trainer;
    std::vector<CalibrationRecord> records;  // held-out lookups at the last states()
    double threshold = 1 - 1e-6;
  };
  bool held_out(const data::SparseView& x) const;
  const engine::Network& net_;
  TrainingCacheOptions options_;
  std::vector<Slot> slots_;
  Rng rng_;
  double seconds_ = 0;
  std::uint64_t rows_ = 0, held_seen_ = 0;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_;
  std::vector<data::SparseView> reservoir_;
  engine::HiddenActivations acts_;
  std::vector<data::SparseView> picked_;
  std::vector<float> scratch_;
};

}  // namespace glide::cache
