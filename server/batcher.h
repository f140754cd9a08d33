// Dynamic batching: requests for one model queue here, and one worker thread groups them (up to
// max_batch instances, or whatever arrived within max_delay of the oldest) into a single
// Predictor::predict call, then hands each caller its own slice through its promise. Requests
// batch with those of the same k and mode (and probes, in sampled mode): a call has one of each.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/cached_predictor.h"
#include "common/error.h"
#include "engine/predictor.h"
#include "server/metrics.h"
#include "server/request_parser.h"

namespace glide::server {

// The model a batch runs on. Each batch takes a snapshot, so a reload that swaps in a new one
// never changes a batch already running.
struct ModelSnapshot {
  std::shared_ptr<const engine::InferenceModel> model;
  std::uint64_t version = 0;
  // Learned caches of this version (null: caching off), in front of every predictor below. A
  // reload makes new ones, from the caches stored in the new model file or cold.
  std::shared_ptr<cache::CachedPredictor> cached;
  // What answers requests of each mode the model was loaded for.
  std::map<engine::EvalMode, std::shared_ptr<const engine::Predictor>> predictors;

  // The predictor of `mode`; throws glide::Error when the model was loaded without it.
  const engine::Predictor& predictor(engine::EvalMode mode) const;
};

// The queue is full or the batcher is stopping (HTTP 503 with Retry-After).
class QueueFullError : public Error {
 public:
  explicit QueueFullError(const std::string& message) : Error(message) {}
};

struct BatchResult {
  int status = 200;   // 200, 400 (the model rejected the input) or 500
  std::string error;  // when status != 200
  std::vector<engine::Prediction> predictions;
  // With caching on, per prediction: the hidden layer whose cache answered it, or -1 (the full
  // network did). Empty with caching off.
  std::vector<int> cached;
  std::uint64_t version = 0;  // the model version that answered
};

struct BatcherOptions {
  std::size_t max_batch = 64;                // instances per predict call; 1: no batching
  std::chrono::microseconds max_delay{500};  // how long the oldest request waits for company
  std::size_t max_queue = 1024;              // requests waiting; more get QueueFullError
  // Runs on the worker before each batch. For tests (to hold the worker) and instrumentation.
  std::function<void()> before_batch;
};

class Batcher {
 public:
  Batcher(std::string model_name, BatcherOptions options,
          std::function<ModelSnapshot()> current_model, Metrics* metrics);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `request`; the future is ready once its batch ran. Throws QueueFullError.
  std::future<BatchResult> submit(ParsedRequest request);
  std::size_t queue_depth() const;
  // Runs what is queued, then ends the worker; later submits throw QueueFullError.
  void stop();

 private:
  struct Pending {
    ParsedRequest request;
    std::promise<BatchResult> promise;
    std::chrono::steady_clock::time_point queued_at;
  };
  void work();
  std::vector<Pending> take_batch(std::unique_lock<std::mutex>& lock);
  void run(std::vector<Pending>& batch);

  const std::string model_name_;
  const BatcherOptions options_;
  const std::function<ModelSnapshot()> current_model_;
  Metrics* const metrics_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  std::size_t queued_instances_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace glide::server
