// Early-exit serving: a Predictor that wraps another one and puts learned caches
// (learned_cache.h) on chosen hidden layers in front of it. It runs the hidden layers one at a
// time; after a layer with a cache, the inputs the cache is confident about are answered from it
// and leave the batch, so the layers above and the wrapped predictor's output layer run only for
// the rest. Every miss (the full network ran) becomes a training example (the layer's
// activations -> the model's own top-1) queued for a background thread, which trains the caches
// and publishes new versions by swapping a shared_ptr; requests never wait for training (a full
// queue drops examples). A random `shadow_fraction` of hits also runs the full network; whether
// the cache's top-1 agreed moves that layer's threshold.
//
// One CachedPredictor belongs to one loaded model: a reload makes a new one, which starts from the
// caches stored in the new model file (cache_file.h) or cold when it has none. share() puts the
// same caches in front of the model's other predictors (one set of caches for every mode).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "cache/cache_file.h"
#include "cache/learned_cache.h"
#include "common/rng.h"
#include "engine/predictor.h"

namespace glide::cache {

struct CachedOptions {
  // Hidden layers with a cache; empty: those of the warm caches given, else the last one.
  std::vector<std::uint32_t> layers;
  double target = 0.99;  // top-1 agreement of hits with the full model
  double initial_threshold = 0.98;
  // Of the allowed disagreement (1 - target), the share the calibration aims at (the rest is the
  // margin for its estimate's noise; threshold_tuner.h).
  double calibration_share = 0.5;
  // Hits also run through the full network: this share on average, more near the threshold
  // (twice at it) and less for near-certain hits (a quarter at the least); shadow_chance().
  double shadow_fraction = 0.05;
  bool uniform_shadows = false;  // every hit at shadow_fraction (the settings before, to compare)
  CacheOptions cache;
  // A new version also goes out this long after the last one when fewer than publish_every
  // examples arrived meanwhile (0: only every publish_every examples).
  double publish_after_ms = 10;
  // Skip a cache's lookups while they cost more than they save (the running mean over its recent
  // lookups of hits x the skipped layers' time - lookup time is negative), except one batch in
  // kProbeEvery, whose lookups keep that estimate and the threshold's calibration current.
  // Not before skip_after lookups: a cold cache (few hits yet, a threshold still at its start)
  // would otherwise be skipped at once and, calibrated only by probes, stay skipped.
  // Off by default: on the `default` model it turned off, on uniform traffic, a cache the
  // unskipped version kept profitable (docs/caches.md, "Skipping unprofitable caches").
  bool skip_unprofitable = false;
  std::uint64_t skip_after = 4096;
  std::size_t queue_capacity = 8192;  // training examples waiting; more are dropped
  bool background = true;             // false: examples wait for drain() (tests)
  std::uint64_t seed = 1;
};

// Per cache, cumulative since this CachedPredictor was made.
struct LayerStats {
  std::uint32_t layer = 0;
  std::uint64_t hits = 0, misses = 0;  // lookups answered / passed on (shadowed hits: neither)
  std::uint64_t shadow_checks = 0, shadow_agreed = 0;
  // Misses whose best hot label was the full model's top-1 (hits the threshold forwent).
  std::uint64_t agreeing_misses = 0;
  double threshold = 0;
  double saved_seconds = 0;   // estimated time of the layers hits skipped (not net of lookups)
  double lookup_seconds = 0;  // time in lookups (hits and misses)
  std::uint64_t examples = 0, version = 0, dropped = 0;
  std::size_t hot_labels = 0, bytes = 0;
  std::uint64_t skipped = 0;  // inputs not looked up (skip_unprofitable); counted as misses
  double gain_us = 0;         // estimated saving per lookup (microseconds; < 0: skipping)
};

class CachedPredictor final : public engine::Predictor {
 public:
  // Caches in front of `inner` (misses go through its output layer). `warm`: caches to start
  // from (e.g. read_caches() of the model file), by layer; caches of layers not in
  // options.layers are ignored, cached layers without one start cold.
  CachedPredictor(std::shared_ptr<const engine::Predictor> inner, CachedOptions options,
                  const CacheStates& warm = {});
  ~CachedPredictor() override;
  CachedPredictor(const CachedPredictor&) = delete;
  CachedPredictor& operator=(const CachedPredictor&) = delete;

  // The same caches in front of `inner` (another predictor over the same network): what it
  // predicts answers from and trains `caches` like their own predict() does.
  static std::shared_ptr<const engine::Predictor> share(
      std::shared_ptr<const CachedPredictor> caches,
      std::shared_ptr<const engine::Predictor> inner);

  // predict() (engine::Predictor) sets each prediction's exit_layer to the hidden layer whose
  // cache answered it, or -1 when the full network did. Thread-safe: it is const like every
  // Predictor's, and what it changes (counters, thresholds, the example queue, layer costs) is
  // atomic or guarded by the mutexes below. The output layer alone is the inner predictor's.
  void predict_from_hidden(const engine::HiddenActivations& acts, std::size_t batch,
                           std::uint32_t k, const engine::SearchParams& params,
                           std::vector<engine::Prediction>& out) const override {
    inner_->predict_from_hidden(acts, batch, k, params, out);
  }
  bool exits_early() const override { return true; }
  // Trains on every queued example and publishes (blocks until the queue is empty).
  void drain();
  // Learns from examples computed elsewhere (training: the hidden activations of a batch and the
  // model's top-1 per row). Same queue as serving misses.
  void learn(const engine::HiddenActivations& acts, std::size_t batch,
             std::span<const std::uint32_t> top1);
  std::vector<LayerStats> stats() const;
  const std::vector<std::uint32_t>& layers() const { return layers_; }
  std::size_t bytes() const;  // parameters of the current versions, all layers
  // The published caches with their thresholds and the trainers' counts (to save), after
  // training on every queued example.
  CacheStates states();
  // The published cache of layers()[slot] (null before the first version).
  std::shared_ptr<const CacheModel> cache(std::size_t slot) const {
    return slots_[slot]->current();
  }
  double threshold(std::size_t slot) const { return slots_[slot]->tuner.threshold(); }

 protected:
  void predict_checked(std::span<const data::SparseView> inputs, std::uint32_t k,
                       const engine::SearchParams& params,
                       std::vector<engine::Prediction>& out) const override {
    answer(*inner_, inputs, k, params, out);
  }

 private:
  friend class SharedCachePredictor;
  struct Example {
    std::uint32_t slot;  // index into layers_
    std::uint32_t label;
    std::vector<float> act;  // empty: a hit, counted towards popularity only
  };
  struct Slot {
    std::uint32_t layer;
    std::unique_ptr<CacheTrainer> trainer;  // background thread only
    mutable std::mutex published_mutex;
    std::shared_ptr<const CacheModel> published;
    ThresholdTuner tuner;
    std::atomic<std::uint64_t> hits{0}, misses{0}, dropped{0}, agreeing_misses{0}, skipped{0};
    std::atomic<std::uint64_t> batches{0};    // lookup batches considered (for probing)
    std::atomic<std::uint64_t> looked_up{0};  // inputs looked up
    std::atomic<double> gain{0};              // running saving per lookup, seconds
    std::atomic<double> saved{0}, lookup{0};
    std::chrono::steady_clock::time_point last_publish{};  // background thread only
    Slot(std::uint32_t l, std::uint32_t dim, const CachedOptions& o, const CacheState* warm)
        : layer(l),
          trainer(warm ? std::make_unique<CacheTrainer>(*warm, o.cache)
                       : std::make_unique<CacheTrainer>(l, dim, o.cache)),
          published(warm ? compacted(*warm->model, o.cache.confidence) : nullptr),
          tuner(o.target, warm ? warm_threshold(*warm, o.cache.confidence) : o.initial_threshold,
                lowest_threshold(warm ? warm->model->form() : o.cache.form), o.calibration_share) {}
    std::shared_ptr<const CacheModel> current() const {
      std::lock_guard lock(published_mutex);
      return published;
    }
  };
  struct Request;  // one answer() call's buffers (cached_predictor.cpp)
  // The request path (cached_predictor.cpp), for checked inputs with k clamped: every cached
  // layer answers what it can, `full`'s output layer the rest.
  void answer(const engine::Predictor& full, std::span<const data::SparseView> inputs,
              std::uint32_t k, const engine::SearchParams& params,
              std::vector<engine::Prediction>& out) const;
  void start(Request& rq, std::span<const data::SparseView> inputs, std::uint32_t k) const;
  void forward(Request& rq, std::size_t l) const;
  void stash(Request& rq, std::size_t slot) const;
  std::optional<std::uint64_t> looks_up(Slot& slot, std::size_t n) const;
  void look_up(Request& rq, std::size_t slot, const CacheModel& model, std::uint64_t batch,
               std::vector<engine::Prediction>& out) const;
  double draw_shadow(double confidence, float threshold) const;
  void count_lookups(Slot& slot, const Request& rq, std::uint64_t batch, std::size_t hits,
                     std::size_t misses, double seconds) const;
  void run_full(const engine::Predictor& full, Request& rq,
                std::vector<engine::Prediction>& out) const;
  void learn_from_miss(const Request& rq, std::size_t input, std::uint32_t top1) const;
  void finish(const Request& rq, const std::vector<engine::Prediction>& out) const;

  // `act` null: count `label` only.
  void enqueue(std::uint32_t slot, const float* act, std::uint32_t label) const;
  static std::shared_ptr<const CacheModel> compacted(const CacheModel& m, Confidence confidence) {
    auto c = std::make_shared<CacheModel>(m);
    c->set_confidence(confidence);
    c->compact();
    return c;
  }
  // A warm cache's threshold, unless it was tuned on another confidence measure (a centroid
  // cache saved with the best cosine): then none is certified yet.
  static double warm_threshold(const CacheState& warm, Confidence confidence) {
    return warm.model->form() == CacheForm::kCentroid && warm.model->confidence() != confidence
               ? 1 - 1e-6
               : warm.threshold;
  }
  void work();
  void train(std::deque<Example>& batch);
  void publish(Slot& s);  // a new version of the slot's cache from its trainer
  static void add_double(std::atomic<double>& a, double v);

  std::shared_ptr<const engine::Predictor> inner_;
  const CachedOptions options_;
  std::vector<std::uint32_t> layers_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<int> slot_of_layer_;  // -1: no cache on that layer
  // Estimated seconds per instance of each hidden layer and of the output layer (EMA of misses).
  mutable std::mutex cost_mutex_;
  mutable std::vector<double> layer_cost_;
  mutable double output_cost_ = 0;
  mutable std::mutex rng_mutex_;
  mutable Rng rng_;

  mutable std::mutex queue_mutex_;
  mutable std::condition_variable queue_wake_;
  std::condition_variable queue_idle_;
  mutable std::deque<Example> queue_;
  bool busy_ = false, stopping_ = false;
  int drain_waiting_ = 0;  // drain() calls waiting for the queue to empty
  std::thread worker_;
};

// The chance that a hit at `confidence` (at least `threshold`) is also run through the full
// network, for a mean of about `base`: 2 x base at the threshold, falling linearly towards 1,
// kept within [base / 4, min(1, 4 x base)].
double shadow_chance(double base, double confidence, double threshold);

// "1,2" -> {1, 2}; "" -> {}. Throws glide::Error for a layer the model does not have.
std::vector<std::uint32_t> parse_layers(const std::string& s, std::size_t hidden_layers);

}  // namespace glide::cache
