// The threshold of a learned cache (docs/caches.md, "Safety"): calibrated so the hits' top-1
// agrees with the full model at least `target` of the time, and moved at once by shadow checks.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace glide::cache {

// A lookup whose best class was hot, with the full model's verdict: did the cache's top-1 agree?
// `weight`: how many lookups it stands for (a shadow-checked hit stands for 1 / shadow_fraction).
struct CalibrationRecord {
  float confidence = 0;
  bool agreed = false;
  float weight = 1;
};

// The lowest confidence at which the (weighted) records at or above it agree at least
// 1 - share x (1 - target) of the time (by default half the allowed disagreement: the margin for
// the estimate's noise) over at least `min_weight` records, counting one extra disagreement of
// their mean weight (so with target 0.99 it takes about 200 agreeing records and none against);
// 1 - 1e-6 when none qualifies; never below `lowest` (lowest_threshold() of the cache's form); -1
// when the records weigh less than `min_weight` in all (no evidence either way).
double calibrate_threshold(std::vector<CalibrationRecord> records, double target,
                           double min_weight = 64, double lowest = 0.5, double share = 0.5);

// Keeps the measured top-1 agreement of hits with the full model at or above `target`, from two
// signals. record(): lookups whose input then went through the full network (misses below the
// threshold, and shadow-checked hits above it, weighted up) fill a window of recent records; every
// `recalibrate_every` records the threshold moves to calibrate_threshold() of the window (for a
// while after a shadow check disagreed: down by at most a small step in -log(1 - t)). observe():
// each shadow-checked hit moves the threshold at once, up fast on a disagreement (a step in
// -log(1 - t)) and down slowly on an agreement (settling where agreement is about
// (1 + target) / 2), so a drop in agreement is answered before the next recalibration. Thread-safe.
class ThresholdTuner {
 public:
  // `lowest`: the threshold never goes below it (lowest_threshold() of the cache's form);
  // `share`: of the allowed disagreement, what calibrate_threshold() aims at.
  explicit ThresholdTuner(double target = 0.99, double initial = 0.98, double lowest = 0.5,
                          double share = 0.5, std::size_t window = 4096,
                          std::size_t recalibrate_every = 128);
  void observe(bool agreed);
  void record(float confidence, bool agreed, float weight = 1);
  double threshold() const { return threshold_.load(std::memory_order_relaxed); }
  double target() const { return target_; }
  std::uint64_t checks() const;
  std::uint64_t agreed() const;

 private:
  void set(double m);
  const double target_, lowest_, share_;
  const std::size_t window_, every_;
  mutable std::mutex mutex_;
  double m_;  // -log(1 - threshold)
  std::uint64_t checks_ = 0, agreed_ = 0;
  std::vector<CalibrationRecord> records_;  // ring buffer
  std::size_t next_ = 0, since_ = 0;
  int cooldown_ = 0;  // recalibrations left that may lower the threshold only gradually
  std::atomic<double> threshold_;
};

}  // namespace glide::cache
