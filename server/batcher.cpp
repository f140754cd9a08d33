#include "server/batcher.h"

#include "common/timing.h"

namespace glide::server {

const engine::Predictor& ModelSnapshot::predictor(engine::EvalMode mode) const {
  const auto it = predictors.find(mode);
  // Every mode the model was loaded for is here: model->predictor() throws for the others.
  return it != predictors.end() ? *it->second : model->predictor(mode);
}

Batcher::Batcher(std::string model_name, BatcherOptions options,
                 std::function<ModelSnapshot()> current_model, Metrics* metrics)
    : model_name_(std::move(model_name)),
      options_(std::move(options)),
      current_model_(std::move(current_model)),
      metrics_(metrics) {
  worker_ = std::thread([this] { work(); });
}

Batcher::~Batcher() {
  stop();
}

std::future<BatchResult> Batcher::submit(ParsedRequest request) {
  Pending p{std::move(request), {}, Clock::now()};
  auto future = p.promise.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw QueueFullError("the server is shutting down");
    if (queue_.size() >= options_.max_queue)
      throw QueueFullError("the queue of model '" + model_name_ + "' is full (" +
                           std::to_string(options_.max_queue) + " requests); retry later");
    queued_instances_ += p.request.num_instances();
    queue_.push_back(std::move(p));
  }
  wake_.notify_one();
  return future;
}

std::size_t Batcher::queue_depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Batcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Batcher::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued has run
    // Wait for company up to max_delay after the oldest request arrived, unless the batch is
    // already full. While a batch runs, new requests pile up and form the next one anyway.
    // Sampled requests do not wait: each instance scores its own candidates, so a batch saves
    // them nothing and the wait would be all their latency (docs/serving.md).
    const auto deadline = queue_.front().queued_at + options_.max_delay;
    const bool waits = queue_.front().request.mode == engine::EvalMode::kExact;
    while (!stopping_ && waits && options_.max_batch > 1 &&
           queued_instances_ < options_.max_batch && Clock::now() < deadline)
      wake_.wait_until(lock, deadline);
    std::vector<Pending> batch = take_batch(lock);
    lock.unlock();
    try {
      if (options_.before_batch) options_.before_batch();
      run(batch);
    } catch (...) {
      // Whatever went wrong (out of memory), every caller gets an answer (a 500), none hangs.
      for (auto& p : batch) {
        try {
          p.promise.set_exception(std::current_exception());
        } catch (const std::future_error&) {  // this one was answered already
        }
      }
    }
    lock.lock();
  }
}

// Takes the oldest request and every queued one with the same k and mode (and probes, which only
// sampled mode uses: one predict call has one SearchParams) that still fits. (A request larger
// than max_batch runs alone rather than being split.)
std::vector<Batcher::Pending> Batcher::take_batch(std::unique_lock<std::mutex>&) {
  std::vector<Pending> batch;
  const std::uint32_t k = queue_.front().request.k;
  const auto mode = queue_.front().request.mode;
  const std::uint32_t probes = queue_.front().request.probes;
  std::size_t instances = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    const std::size_t n = it->request.num_instances();
    const bool fits = batch.empty() || instances + n <= options_.max_batch;
    const bool same_search = mode == engine::EvalMode::kExact || it->request.probes == probes;
    if (fits && it->request.k == k && it->request.mode == mode && same_search) {
      instances += n;
      queued_instances_ -= n;
      batch.push_back(std::move(*it));
      it = queue_.erase(it);
      if (instances >= options_.max_batch) break;
    } else {
      ++it;
    }
  }
  return batch;
}

void Batcher::run(std::vector<Pending>& batch) {
  const auto start = Clock::now();
  if (metrics_)
    for (const auto& p : batch)
      metrics_->add_queue_wait_seconds(std::chrono::duration<double>(start - p.queued_at).count());
  const ModelSnapshot model = current_model_();
  std::vector<data::SparseView> inputs;
  for (const auto& p : batch)
    for (std::size_t i = 0; i < p.request.num_instances(); ++i)
      inputs.push_back(p.request.instance(i));

  // One request's result from predicting `views`; errors become its status.
  auto predict = [&](std::span<const data::SparseView> views, const ParsedRequest& request) {
    BatchResult r;
    r.version = model.version;
    try {
      const engine::Predictor& predictor = model.predictor(request.mode);
      predictor.predict(views, request.k, r.predictions, {.probes = request.probes});
      if (predictor.exits_early()) r.cached = engine::exit_layers(r.predictions);
    } catch (const Error& e) {
      r.status = 400;  // the model refused the input (e.g. a reload changed its shape)
      r.error = e.what();
    } catch (const std::exception& e) {
      r.status = 500;
      r.error = std::string("prediction failed: ") + e.what();
    } catch (...) {
      r.status = 500;
      r.error = "prediction failed";
    }
    return r;
  };

  BatchResult all = predict(inputs, batch.front().request);
  if (metrics_) metrics_->observe_batch(model_name_, inputs.size(), seconds_since(start));
  if (all.status != 200 && batch.size() > 1) {
    // One bad request must not fail the others: answer each on its own.
    std::size_t offset = 0;
    for (auto& p : batch) {
      const std::size_t n = p.request.num_instances();
      p.promise.set_value(predict(std::span(inputs).subspan(offset, n), p.request));
      offset += n;
    }
    return;
  }
  std::size_t offset = 0;
  for (auto& p : batch) {
    const std::size_t n = p.request.num_instances();
    BatchResult r;
    r.status = all.status;
    r.error = all.error;
    r.version = all.version;
    if (all.status == 200 && !all.cached.empty())
      r.cached.assign(all.cached.begin() + offset, all.cached.begin() + offset + n);
    if (all.status == 200)
      r.predictions.assign(std::make_move_iterator(all.predictions.begin() + offset),
                           std::make_move_iterator(all.predictions.begin() + offset + n));
    offset += n;
    p.promise.set_value(std::move(r));
  }
}

}  // namespace glide::server
