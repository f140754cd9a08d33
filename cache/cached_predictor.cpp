#include "cache/cached_predictor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <optional>
#include <sstream>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/staged_forward.h"

namespace glide::cache {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
constexpr double kCostEma = 0.05;
constexpr std::size_t kWakeBatch = 64;
// skip_unprofitable: the weight of one lookup batch in a cache's running saving, and how often
// a skipped cache still looks up (a probe).
constexpr double kGainEma = 0.02;
constexpr std::uint64_t kProbeEvery = 16;
}  // namespace

std::vector<std::uint32_t> parse_layers(const std::string& s, std::size_t hidden_layers) {
  std::vector<std::uint32_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    std::size_t used = 0;
    unsigned long v = 0;
    try {
      v = std::stoul(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size()) fail("--cache-layers", "'" + item + "' is not a layer index");
    if (v >= hidden_layers)
      fail("--cache-layers", "layer " + item + " does not exist (the model has " +
                                 std::to_string(hidden_layers) + " hidden layers, 0-based)");
    if (std::find(out.begin(), out.end(), v) == out.end())
      out.push_back(static_cast<std::uint32_t>(v));
  }
  std::sort(out.begin(), out.end());
  return out;
}

CachedPredictor::CachedPredictor(std::shared_ptr<const engine::Predictor> inner,
                                 CachedOptions options, const CacheStates& warm)
    : engine::Predictor(inner->shared_network()),
      inner_(std::move(inner)),
      options_(std::move(options)),
      rng_(options_.seed) {
  const auto& hidden = network().config().hidden;
  layers_ = options_.layers;
  if (layers_.empty())
    for (const auto& [layer, st] : warm) layers_.push_back(layer);
  if (layers_.empty()) layers_.push_back(static_cast<std::uint32_t>(hidden.size() - 1));
  std::sort(layers_.begin(), layers_.end());
  layers_.erase(std::unique(layers_.begin(), layers_.end()), layers_.end());
  slot_of_layer_.assign(hidden.size(), -1);
  for (std::uint32_t l : layers_) {
    if (l >= hidden.size())
      fail("cache on hidden layer " + std::to_string(l) + ": the model has " +
           std::to_string(hidden.size()) + " hidden layers");
    slot_of_layer_[l] = static_cast<int>(slots_.size());
    const auto w = warm.find(l);
    const CacheState* st = w != warm.end() && w->second.model && w->second.model->dim() == hidden[l]
                               ? &w->second
                               : nullptr;
    slots_.push_back(std::make_unique<Slot>(l, hidden[l], options_, st));
  }
  layer_cost_.assign(hidden.size(), 0.0);
  if (options_.background) worker_ = std::thread([this] { work(); });
}

CachedPredictor::~CachedPredictor() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void CachedPredictor::add_double(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

// The caches in front of another predictor over the same network: requests go through the
// owner's request path with this predictor's output layer for the misses.
class SharedCachePredictor final : public engine::Predictor {
 public:
  SharedCachePredictor(std::shared_ptr<const CachedPredictor> caches,
                       std::shared_ptr<const engine::Predictor> inner)
      : engine::Predictor(inner->shared_network()),
        caches_(std::move(caches)),
        inner_(std::move(inner)) {
    if (&caches_->network() != &inner_->network())
      fail("shared caches: the predictor runs another network than the caches'");
  }
  void predict_from_hidden(const engine::HiddenActivations& acts, std::size_t batch,
                           std::uint32_t k, const engine::SearchParams& params,
                           std::vector<engine::Prediction>& out) const override {
    inner_->predict_from_hidden(acts, batch, k, params, out);
  }
  bool exits_early() const override { return true; }

 protected:
  void predict_checked(std::span<const data::SparseView> inputs, std::uint32_t k,
                       const engine::SearchParams& params,
                       std::vector<engine::Prediction>& out) const override {
    caches_->answer(*inner_, inputs, k, params, out);
  }

 private:
  std::shared_ptr<const CachedPredictor> caches_;
  std::shared_ptr<const engine::Predictor> inner_;
};

std::shared_ptr<const engine::Predictor> CachedPredictor::share(
    std::shared_ptr<const CachedPredictor> caches, std::shared_ptr<const engine::Predictor> inner) {
  return std::make_shared<SharedCachePredictor>(std::move(caches), std::move(inner));
}

// --- the request path --------------------------------------------------------------------------

namespace {
constexpr std::uint32_t kNone = ~std::uint32_t{0};
}  // namespace

// One answer() call's state. Its buffers are reused across calls on a thread: a request of one
// input is a few microseconds when a cache answers it, and a dozen allocations were a tenth of
// that.
struct CachedPredictor::Request {
  struct Shadow {
    std::size_t input;
    std::uint32_t slot, top1;
  };
  std::uint32_t k = 0;
  engine::SearchParams params;  // for the output layer of the misses
  std::size_t n = 0;            // inputs still in the batch (rows [0, n) of acts)
  engine::HiddenActivations acts;
  std::vector<data::SparseView> views;
  std::vector<std::size_t> idx;  // batch position -> input index
  std::vector<Shadow> shadows;
  // 1 + the slot whose hit this input is a shadow check of (0: none): it goes through the full
  // network and no later cache answers it.
  std::vector<std::uint32_t> shadowed;
  std::vector<float> shadow_weight;  // the hits a shadow check stands for
  // Activations of each cached layer by input index, for the training examples of misses, and
  // each cache's answer (confidence, top-1; kNone: not hot or not looked up), for calibration.
  std::vector<std::vector<float>> stash;
  std::vector<std::vector<std::pair<float, std::uint32_t>>> looked;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> hit_labels;  // (slot, label)
  // Estimated seconds per input of each hidden layer and of the output layer (updated here,
  // published back when the call ends).
  std::vector<double> cost;
  double out_cost = 0;
  std::vector<float> scratch;
  engine::Prediction pred;
};

void CachedPredictor::answer(const engine::Predictor& full,
                             std::span<const data::SparseView> inputs, std::uint32_t k,
                             const engine::SearchParams& params,
                             std::vector<engine::Prediction>& out) const {
  out.resize(inputs.size());
  if (inputs.empty()) return;
  thread_local Request rq;
  start(rq, inputs, k);
  rq.params = params;
  for (std::size_t l = 0; l < rq.cost.size() && rq.n > 0; ++l) {
    forward(rq, l);
    const int s = slot_of_layer_[l];
    if (s < 0) continue;
    stash(rq, static_cast<std::size_t>(s));
    const auto model = slots_[s]->current();
    if (!model || model->examples < options_.cache.min_examples) {
      slots_[s]->misses.fetch_add(rq.n, std::memory_order_relaxed);
      continue;
    }
    if (const auto batch = looks_up(*slots_[s], rq.n))
      look_up(rq, static_cast<std::size_t>(s), *model, *batch, out);
  }
  if (rq.n > 0) run_full(full, rq, out);
  finish(rq, out);
}

// Resets `rq` for a batch of `inputs`: all of them in the batch, none looked up yet, and the
// layer costs as last published.
void CachedPredictor::start(Request& rq, std::span<const data::SparseView> inputs,
                            std::uint32_t k) const {
  const std::size_t B = inputs.size();
  rq.k = k;
  rq.n = B;
  engine::prepare_activations(network(), B, rq.acts);
  rq.views.assign(inputs.begin(), inputs.end());
  rq.idx.resize(B);
  std::iota(rq.idx.begin(), rq.idx.end(), std::size_t{0});
  rq.shadows.clear();
  rq.shadowed.assign(B, 0);
  rq.shadow_weight.assign(B, 1.0f);
  rq.stash.resize(slots_.size());
  rq.looked.resize(slots_.size());
  for (auto& l : rq.looked) l.assign(B, {0.0f, kNone});
  rq.hit_labels.clear();
  std::lock_guard lock(cost_mutex_);
  rq.cost = layer_cost_;  // one per hidden layer
  rq.out_cost = output_cost_;
}

// Hidden layer l for the inputs still in the batch, timing it.
void CachedPredictor::forward(Request& rq, std::size_t l) const {
  const auto t0 = Clock::now();
  engine::forward_layer(network(), l, rq.views, rq.n, rq.acts, engine::kernels());
  const double dt = since(t0) / rq.n;
  rq.cost[l] = rq.cost[l] ? (1 - kCostEma) * rq.cost[l] + kCostEma * dt : dt;
}

// Keeps the slot's layer activations of the inputs still in the batch, by input index.
void CachedPredictor::stash(Request& rq, std::size_t s) const {
  const std::uint32_t l = slots_[s]->layer, dim = network().config().hidden[l];
  rq.stash[s].resize(rq.idx.size() * dim);
  for (std::size_t p = 0; p < rq.n; ++p)
    std::memcpy(rq.stash[s].data() + rq.idx[p] * dim, rq.acts.row(l, p), dim * sizeof(float));
}

// The number of this lookup batch of the slot, or none when its cache skips the batch
// (skip_unprofitable: the batch counts as misses).
std::optional<std::uint64_t> CachedPredictor::looks_up(Slot& slot, std::size_t n) const {
  const std::uint64_t batch = slot.batches.fetch_add(1, std::memory_order_relaxed);
  if (options_.skip_unprofitable && slot.gain.load(std::memory_order_relaxed) < 0 &&
      batch % kProbeEvery != 0 &&
      slot.looked_up.load(std::memory_order_relaxed) >= options_.skip_after) {
    slot.skipped.fetch_add(n, std::memory_order_relaxed);
    slot.misses.fetch_add(n, std::memory_order_relaxed);
    return std::nullopt;
  }
  slot.looked_up.fetch_add(n, std::memory_order_relaxed);
  return batch;
}

// The chance with which a hit at `confidence` was drawn to be also run through the full network
// (a shadow check), or 0 when it was not drawn.
double CachedPredictor::draw_shadow(double confidence, float threshold) const {
  const double chance = options_.uniform_shadows
                            ? options_.shadow_fraction
                            : shadow_chance(options_.shadow_fraction, confidence, threshold);
  std::lock_guard lock(rng_mutex_);
  return rng_.uniform() < chance ? chance : 0;
}

// Looks up every input still in the batch in the slot's cache: hits leave the batch with their
// answer in `out`, the rest (misses and shadow checks) move to the front of the batch.
void CachedPredictor::look_up(Request& rq, std::size_t s, const CacheModel& model,
                              std::uint64_t batch, std::vector<engine::Prediction>& out) const {
  Slot& slot = *slots_[s];
  const std::uint32_t l = slot.layer;
  const float threshold = static_cast<float>(slot.tuner.threshold());
  const auto t0 = Clock::now();
  std::size_t keep = 0, hits = 0, misses = 0;
  for (std::size_t p = 0; p < rq.n; ++p) {
    const std::size_t i = rq.idx[p];
    bool hot = false;
    const float conf = model.lookup(rq.acts.row(l, p), rq.k, rq.pred, &hot, rq.scratch, threshold);
    if (hot) rq.looked[s][i] = {conf, rq.pred.labels[0]};
    if (!rq.shadowed[i] && hot && conf >= threshold) {
      if (const double chance = draw_shadow(conf, threshold); chance > 0) {
        rq.shadow_weight[i] = static_cast<float>(1 / chance);
        rq.shadows.push_back({i, static_cast<std::uint32_t>(s), rq.pred.labels[0]});
        rq.shadowed[i] = static_cast<std::uint32_t>(s) + 1;
      } else {
        out[i] = rq.pred;
        out[i].scored = 0;
        out[i].exit_layer = static_cast<int>(l);
        rq.hit_labels.push_back({static_cast<std::uint32_t>(s), rq.pred.labels[0]});
        ++hits;
        continue;  // answered: leaves the batch
      }
    } else if (!rq.shadowed[i]) {
      ++misses;
    }
    if (keep != p) {
      std::memcpy(rq.acts.row(l, keep), rq.acts.row(l, p), rq.acts.strides[l] * sizeof(float));
      rq.views[keep] = rq.views[p];
      rq.idx[keep] = i;
    }
    ++keep;
  }
  count_lookups(slot, rq, batch, hits, misses, since(t0));
  rq.n = keep;
}

// The slot's counters after a lookup batch of rq.n inputs, and its running saving per lookup.
void CachedPredictor::count_lookups(Slot& slot, const Request& rq, std::uint64_t batch,
                                    std::size_t hits, std::size_t misses, double seconds) const {
  double rest = rq.out_cost;
  for (std::size_t j = slot.layer + 1; j < rq.cost.size(); ++j) rest += rq.cost[j];
  slot.hits.fetch_add(hits, std::memory_order_relaxed);
  slot.misses.fetch_add(misses, std::memory_order_relaxed);
  add_double(slot.lookup, seconds);
  add_double(slot.saved, hits * rest);  // gross: a counter, so it never decreases
  // Only the request threads write gain; a lost update between two of them costs nothing.
  const double g = slot.gain.load(std::memory_order_relaxed);
  const double now = (hits * rest - seconds) / rq.n;
  slot.gain.store(batch == 0 ? now : (1 - kGainEma) * g + kGainEma * now,
                  std::memory_order_relaxed);
}

// The inputs left after every cache go through `full`'s output layer; each becomes a training
// example for the caches.
void CachedPredictor::run_full(const engine::Predictor& full, Request& rq,
                               std::vector<engine::Prediction>& out) const {
  std::vector<engine::Prediction> answers;
  const auto t0 = Clock::now();
  rq.acts.inputs.assign(rq.views.begin(), rq.views.begin() + rq.n);  // the wide layer's
  full.predict_from_hidden(rq.acts, rq.n, rq.k, rq.params, answers);
  const double dt = since(t0) / rq.n;
  rq.out_cost = rq.out_cost ? (1 - kCostEma) * rq.out_cost + kCostEma * dt : dt;
  for (std::size_t p = 0; p < rq.n; ++p) {
    const std::size_t i = rq.idx[p];
    out[i] = std::move(answers[p]);
    if (!out[i].labels.empty()) learn_from_miss(rq, i, out[i].labels[0]);
  }
}

// A training example per cache (this input's activations -> the model's own top-1), and what
// each cache answered, with the verdict, for its threshold (a shadow-checked hit stands for
// 1 / its shadow chance hits).
void CachedPredictor::learn_from_miss(const Request& rq, std::size_t i, std::uint32_t top1) const {
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    const std::uint32_t dim = network().config().hidden[slots_[s]->layer];
    enqueue(static_cast<std::uint32_t>(s), rq.stash[s].data() + i * dim, top1);
    const auto [conf, guess] = rq.looked[s][i];
    // Not for caches after the one this input is a shadow check of: they never see it.
    if (guess == kNone || (rq.shadowed[i] && rq.shadowed[i] < s + 1)) continue;
    const bool shadow = rq.shadowed[i] == s + 1;
    if (!shadow && guess == top1)
      slots_[s]->agreeing_misses.fetch_add(1, std::memory_order_relaxed);
    slots_[s]->tuner.record(conf, guess == top1, shadow ? rq.shadow_weight[i] : 1.0f);
  }
}

// Shadow checks' verdicts, hits' label popularity, and the layer costs measured.
void CachedPredictor::finish(const Request& rq, const std::vector<engine::Prediction>& out) const {
  for (const auto& sh : rq.shadows)
    slots_[sh.slot]->tuner.observe(!out[sh.input].labels.empty() &&
                                   out[sh.input].labels[0] == sh.top1);
  // Hits count towards their label's popularity (they are no training examples).
  for (const auto& [slot, label] : rq.hit_labels) enqueue(slot, nullptr, label);
  std::lock_guard lock(cost_mutex_);
  layer_cost_ = rq.cost;
  output_cost_ = rq.out_cost;
}

double shadow_chance(double base, double confidence, double threshold) {
  // Hits near the threshold are where the wrong ones are (docs/caches.md): check them more, and
  // the near-certain ones (a repeat on its own row) less, at about the same mean rate. Weighting
  // each check by 1 / chance keeps the agreement estimate unbiased.
  if (base <= 0 || threshold >= 1) return base;
  const double scaled = base * 2 * (1 - confidence) / (1 - threshold);
  return std::clamp(scaled, base / 4, std::min(1.0, 4 * base));
}

void CachedPredictor::learn(const engine::HiddenActivations& acts, std::size_t batch,
                            std::span<const std::uint32_t> top1) {
  for (std::size_t s = 0; s < slots_.size(); ++s)
    for (std::size_t r = 0; r < batch; ++r)
      enqueue(static_cast<std::uint32_t>(s), acts.row(slots_[s]->layer, r), top1[r]);
}

void CachedPredictor::enqueue(std::uint32_t slot, const float* act, std::uint32_t label) const {
  const std::uint32_t dim = act ? network().config().hidden[slots_[slot]->layer] : 0;
  std::size_t queued = 0;
  {
    std::lock_guard lock(queue_mutex_);
    if (queue_.size() >= options_.queue_capacity) {
      if (act) slots_[slot]->dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back({slot, label, std::vector<float>(act, act + dim)});
    queued = queue_.size();
  }
  // The worker takes examples in batches: waking it per example would cost the request thread a
  // context switch each time (see work() for the timed wake-up).
  if (options_.background && queued >= kWakeBatch) queue_wake_.notify_one();
}

void CachedPredictor::train(std::deque<Example>& batch) {
  for (const Example& e : batch) {
    Slot& s = *slots_[e.slot];
    if (e.act.empty()) {
      s.trainer->count(e.label);
      continue;
    }
    s.trainer->add(e.act.data(), e.label);
    if (s.trainer->due()) publish(s);
  }
  batch.clear();
  // Examples learned since the last version reach requests within publish_after_ms even when
  // fewer than publish_every arrive (a recurring input hits from its next request after that);
  // the gap bounds the copying and quantising a snapshot costs on wide layers.
  if (options_.publish_after_ms <= 0) return;
  const auto gap = std::chrono::duration<double, std::milli>(options_.publish_after_ms);
  for (const auto& sp : slots_)
    if (sp->trainer->pending() && Clock::now() - sp->last_publish >= gap) publish(*sp);
}

void CachedPredictor::publish(Slot& s) {
  auto m = s.trainer->snapshot();
  s.last_publish = Clock::now();
  std::lock_guard lock(s.published_mutex);
  s.published = std::move(m);
}

void CachedPredictor::work() {
  // Training yields to request threads: it runs at a lower priority (nice +10 for this thread
  // only, where the system allows it).
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  std::unique_lock lock(queue_mutex_);
  for (;;) {
    // Woken when kWakeBatch examples wait, by drain(), or every few milliseconds for the rest.
    queue_wake_.wait_for(lock, std::chrono::milliseconds(5), [&] {
      return stopping_ || queue_.size() >= kWakeBatch || (drain_waiting_ && !queue_.empty());
    });
    if (!stopping_ && queue_.empty()) continue;
    if (stopping_) return;
    std::deque<Example> batch;
    batch.swap(queue_);
    busy_ = true;
    lock.unlock();
    train(batch);
    lock.lock();
    busy_ = false;
    queue_idle_.notify_all();
  }
}

void CachedPredictor::drain() {
  if (options_.background) {
    std::unique_lock lock(queue_mutex_);
    ++drain_waiting_;
    queue_wake_.notify_one();
    queue_idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
    --drain_waiting_;
  } else {
    std::deque<Example> batch;
    {
      std::lock_guard lock(queue_mutex_);
      batch.swap(queue_);
    }
    train(batch);  // tests call drain() from one thread at a time
  }
}

std::vector<LayerStats> CachedPredictor::stats() const {
  std::vector<LayerStats> out;
  for (const auto& sp : slots_) {
    const Slot& s = *sp;
    LayerStats st;
    st.layer = s.layer;
    st.hits = s.hits.load(std::memory_order_relaxed);
    st.misses = s.misses.load(std::memory_order_relaxed);
    st.agreeing_misses = s.agreeing_misses.load(std::memory_order_relaxed);
    st.skipped = s.skipped.load(std::memory_order_relaxed);
    st.gain_us = 1e6 * s.gain.load(std::memory_order_relaxed);
    st.shadow_checks = s.tuner.checks();
    st.shadow_agreed = s.tuner.agreed();
    st.threshold = s.tuner.threshold();
    st.saved_seconds = s.saved.load(std::memory_order_relaxed);
    st.lookup_seconds = s.lookup.load(std::memory_order_relaxed);
    st.dropped = s.dropped.load(std::memory_order_relaxed);
    if (const auto m = s.current()) {
      st.examples = m->examples;
      st.version = m->version;
      st.hot_labels = m->hot().size();
      st.bytes = m->bytes();
    }
    out.push_back(st);
  }
  return out;
}

CacheStates CachedPredictor::states() {
  drain();
  CacheStates out;
  // The worker stays idle while we hold the lock once it is not busy.
  std::unique_lock lock(queue_mutex_);
  queue_idle_.wait(lock, [&] { return !busy_; });
  for (const auto& sp : slots_) {
    if (sp->trainer->examples() == 0) continue;
    CacheState st = sp->trainer->state();
    st.threshold = sp->tuner.threshold();
    out.emplace(sp->layer, std::move(st));
  }
  return out;
}

std::size_t CachedPredictor::bytes() const {
  std::size_t b = 0;
  for (const auto& s : stats()) b += s.bytes;
  return b;
}

}  // namespace glide::cache
