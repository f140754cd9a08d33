// Server metrics in the Prometheus text exposition format (GET /metrics): request counts by
// endpoint and status code, latency and batch size histograms, queue depth, model info, and the
// time split between parsing, predicting and writing responses that `glide bench serve` reports.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cache/cached_predictor.h"

namespace glide::server {

// Cumulative buckets as Prometheus wants them (`le` upper bounds, then +Inf).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double x);
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  // Observations above `bound` (which must be one of the bounds).
  std::uint64_t count_above(double bound) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// What the registry reports per model at scrape time.
struct ModelGauges {
  std::string name;
  std::uint64_t version = 0;
  std::uint32_t num_features = 0, num_labels = 0;
  std::size_t queue_depth = 0;           // requests waiting for a batch
  std::vector<cache::LayerStats> cache;  // per cached hidden layer (empty: caching off)
};

// Where serving time goes, summed over all requests (seconds).
struct TimeSplit {
  double parse = 0, queue_wait = 0, predict = 0, write = 0;
  std::uint64_t batches = 0, instances = 0;
};

class Metrics {
 public:
  Metrics();
  // One finished HTTP request; `endpoint` is a route name ("predict", "metrics", ...).
  void count_request(const std::string& endpoint, int status, double seconds);
  // One batch run by a model's batcher.
  void observe_batch(const std::string& model, std::size_t instances, double predict_seconds);
  void add_parse_seconds(double s);
  void add_queue_wait_seconds(double s);
  void add_write_seconds(double s);
  void count_reload(const std::string& model, bool ok);

  std::string render(std::span<const ModelGauges> models) const;
  TimeSplit time_split() const;
  // Batches of more than one instance run so far for `model` (tests check batching happened).
  std::uint64_t multi_instance_batches(const std::string& model) const;
  std::uint64_t requests(const std::string& endpoint, int status) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;     // by endpoint
  std::map<std::string, Histogram> batch_size_;  // by model
  std::map<std::pair<std::string, bool>, std::uint64_t> reloads_;
  TimeSplit split_;
};

}  // namespace glide::server
