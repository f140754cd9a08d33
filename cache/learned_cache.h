// A learned cache for one hidden layer (GATI, Balasubramanian et al. 2021): a linear softmax from
// the layer's (L2-normalised) activations to the model's top-1 label, restricted to a hot set of
// labels plus one "other" class. Its softmax probability is the confidence; a lookup is a hit
// when the best class is a hot label and its probability passes the threshold.
//
// CacheModel is an immutable published version (readers share it through a shared_ptr);
// CacheTrainer owns the mutable copy, trains it one example at a time (online SGD on the
// cross-entropy against the model's own top-1), keeps decayed label counts and re-picks the hot
// set as popularity drifts; ThresholdTuner moves the threshold from shadow checks.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/aligned.h"
#include "engine/evaluator.h"

namespace glide::cache {

struct CacheOptions {
  std::uint32_t hot_labels = 1024;         // size of the hot set (classes besides "other")
  float lr = 0.5f;                         // SGD step on normalised activations
  std::uint32_t publish_every = 128;       // examples between published versions
  std::uint32_t hot_refresh_every = 2048;  // examples between hot-set refreshes (first: 256)
  double count_decay = 0.5;                // label counts are multiplied by this at each refresh
  std::uint64_t min_examples = 256;        // no hits before this many examples were learned
};

class CacheModel {
 public:
  CacheModel(std::uint32_t layer, std::uint32_t dim, std::vector<std::uint32_t> hot);

  // Confidence of the best class; when it is a hot label fills `out` with the top-k hot labels
  // (best first) and their probabilities and returns true via *hot. `scratch` holds the logits.
  float lookup(const float* act, std::uint32_t k, engine::Prediction& out, bool* hot,
               std::vector<float>& scratch) const;
  // logits of every class (hot labels then "other") for normalised activations `x`.
  void logits(const float* x, float* z) const;

  std::uint32_t layer() const { return layer_; }
  std::uint32_t dim() const { return dim_; }
  std::uint32_t classes() const { return static_cast<std::uint32_t>(hot_.size()) + 1; }
  const std::vector<std::uint32_t>& hot() const { return hot_; }
  // Bytes of parameters and hot-set ids (what a serving process holds per version).
  std::size_t bytes() const;

  // Row c of the weights (dim() floats; the row is padded past that) and the biases.
  const float* weight_row(std::uint32_t c) const { return w_.data() + c * stride_; }
  const std::vector<float>& bias() const { return b_; }
  // A cache from stored parameters: `weights` is classes() rows of dim() floats (unpadded).
  static CacheModel from_parameters(std::uint32_t layer, std::uint32_t dim,
                                    std::vector<std::uint32_t> hot, std::span<const float> weights,
                                    std::span<const float> bias);

  std::uint64_t examples = 0;  // examples learned when this version was published
  std::uint64_t version = 0;

 private:
  friend class CacheTrainer;
  std::uint32_t layer_, dim_;
  std::size_t stride_;
  std::vector<std::uint32_t> hot_;
  AlignedArray<float> w_;  // classes() x stride_
  std::vector<float> b_;
};

// x / ||x|| into `out` (zeros stay zeros).
void normalise(const float* x, std::uint32_t n, float* out);

// Everything a cache needs to continue where it stopped: the parameters, the tuned threshold
// and the trainer's decayed label counts (what the model file stores, cache/cache_file.h).
struct CacheState {
  std::shared_ptr<const CacheModel> model;
  double threshold = 0.98;
  std::vector<std::pair<std::uint32_t, float>> counts;  // label -> decayed top-1 count
};

class CacheTrainer {
 public:
  CacheTrainer(std::uint32_t layer, std::uint32_t dim, CacheOptions options);
  // Continues from a saved state (its model's examples count as learned).
  CacheTrainer(const CacheState& state, CacheOptions options);
  // The current parameters and counts (threshold left at its default).
  CacheState state() const;
  // One SGD step towards `label` (the full model's top-1) from raw activations `act`.
  void add(const float* act, std::uint32_t label);
  // A copy of the current parameters, to publish.
  std::shared_ptr<const CacheModel> snapshot() const;
  // True when `publish_every` examples arrived since the last snapshot() (then resets).
  bool due() const { return since_publish_ >= options_.publish_every; }
  std::uint64_t examples() const { return examples_; }
  // The parameters being trained (not a published version: for the trainer's own thread).
  const CacheModel& current() const { return model_; }

 private:
  void refresh_hot_set();

  CacheOptions options_;
  CacheModel model_;
  std::unordered_map<std::uint32_t, double> counts_;  // decayed top-1 counts per label
  std::unordered_map<std::uint32_t, std::uint32_t> class_of_;
  std::uint64_t examples_ = 0, next_refresh_ = 0;
  mutable std::uint64_t since_publish_ = 0, versions_ = 0;
  std::vector<float> x_, z_;
};

// Keeps the measured top-1 agreement of hits with the full model at or above `target`: each
// shadow-checked hit that disagrees raises the threshold by a step in -log(1 - t); each agreeing
// one lowers it by a step small enough that the threshold settles where agreement is about
// (1 + target) / 2 (up fast, down slowly). Thread-safe.
class ThresholdTuner {
 public:
  explicit ThresholdTuner(double target = 0.99, double initial = 0.98);
  void observe(bool agreed);
  double threshold() const { return threshold_.load(std::memory_order_relaxed); }
  double target() const { return target_; }
  std::uint64_t checks() const;
  std::uint64_t agreed() const;

 private:
  const double target_;
  mutable std::mutex mutex_;
  double m_;  // -log(1 - threshold)
  std::uint64_t checks_ = 0, agreed_ = 0;
  std::atomic<double> threshold_;
};

}  // namespace glide::cache
