#include "cache/training_caches.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/error.h"
#include "engine/evaluator.h"
#include "engine/kernels.h"
#include "engine/predictor.h"

namespace glide::cache {

namespace {
// No evidence yet: no hits until a server measured some. Few held-out rows: the minimum weight is
// a sixteenth of them, so a small model still gets a threshold.
double threshold_of(const std::vector<CalibrationRecord>& records, double target, CacheForm form) {
  const double t = calibrate_threshold(records, target, 16, lowest_threshold(form));
  return t >= 0 ? t : 1 - 1e-6;
}
}  // namespace

TrainingCaches::TrainingCaches(const engine::Network& net, TrainingCacheOptions options,
                               const CacheStates& warm)
    : net_(net), options_(std::move(options)), rng_(options_.seed) {
  const auto& hidden = net.config().hidden;
  std::vector<std::uint32_t> layers = options_.layers;
  if (layers.empty()) layers.push_back(static_cast<std::uint32_t>(hidden.size() - 1));
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  for (std::uint32_t l : layers) {
    if (l >= hidden.size())
      fail("cache on hidden layer " + std::to_string(l) + ": the model has " +
           std::to_string(hidden.size()) + " hidden layers");
    Slot s{l, nullptr, {}, 0};
    const auto w = warm.find(l);
    if (w != warm.end() && w->second.model && w->second.model->dim() == hidden[l])
      s.trainer = std::make_unique<CacheTrainer>(w->second, options_.cache);
    else
      s.trainer = std::make_unique<CacheTrainer>(l, hidden[l], options_.cache);
    slots_.push_back(std::move(s));
  }
}

bool TrainingCaches::held_out(const data::SparseView& x) const {
  // By content, not address: the same points are held out in every run (and under ASLR).
  std::uint64_t h = options_.seed;
  for (std::size_t i = 0; i < x.ids.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &x.values[i], sizeof bits);
    h ^= std::uint64_t{x.ids[i]} << 32 | bits;
    h = splitmix64(h);
  }
  return splitmix64(h) % 64 == 0;
}

void TrainingCaches::on_batch(std::span<const data::SparseView> inputs) {
  if (inputs.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  if (!started_) {
    started_ = true;
    start_ = t0;
  }
  // Reservoir sample of the held-out rows (cheap: no network pass here).
  for (const data::SparseView& x : inputs) {
    if (!held_out(x)) continue;
    ++held_seen_;
    if (reservoir_.size() < options_.held_out) {
      reservoir_.push_back(x);
    } else {
      const std::uint64_t j = rng_.next() % held_seen_;
      if (j < reservoir_.size()) reservoir_[j] = x;
    }
  }
  // Over budget: skip this batch (the first one always trains; a budget of 1 or more is no
  // budget, which keeps runs reproducible).
  const double elapsed = std::chrono::duration<double>(t0 - start_).count();
  if (options_.time_budget < 1 && rows_ > 0 && seconds_ > options_.time_budget * elapsed) return;
  picked_.clear();
  const std::size_t want = options_.rows_per_batch ? options_.rows_per_batch : inputs.size();
  if (want >= inputs.size()) {
    for (const data::SparseView& x : inputs)
      if (!held_out(x)) picked_.push_back(x);
  } else {
    for (std::size_t i = 0; i < want; ++i) {
      const data::SparseView& x = inputs[rng_.below(static_cast<std::uint32_t>(inputs.size()))];
      if (!held_out(x)) picked_.push_back(x);
    }
  }
  const std::size_t n = picked_.size();
  if (n > 0) {
    net_.forward_hidden(picked_, acts_, engine::kernels());
    std::vector<engine::Prediction> top;
    engine::borrow_predictor(net_, engine::EvalMode::kExact, nullptr)
        ->predict_from_hidden(acts_, n, 1, {}, top);
    for (Slot& s : slots_)
      for (std::size_t r = 0; r < n; ++r)
        if (!top[r].labels.empty()) s.trainer->add(acts_.row(s.layer, r), top[r].labels[0]);
  }
  rows_ += n;
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

CacheStates TrainingCaches::states() {
  // The held-out rows through the current network, looked up in every cache.
  std::vector<engine::Prediction> top;
  if (!reservoir_.empty()) {
    net_.forward_hidden(reservoir_, acts_, engine::kernels());
    engine::borrow_predictor(net_, engine::EvalMode::kExact, nullptr)
        ->predict_from_hidden(acts_, reservoir_.size(), 1, {}, top);
  }
  engine::Prediction pred;
  CacheStates out;
  for (Slot& s : slots_) {
    s.records.clear();
    const CacheModel& m = s.trainer->current();
    for (std::size_t r = 0; r < top.size() && m.classes() > 1; ++r) {
      if (top[r].labels.empty()) continue;
      bool hot = false;
      const float conf = m.lookup(acts_.row(s.layer, r), 1, pred, &hot, scratch_);
      if (hot) s.records.push_back({conf, pred.labels[0] == top[r].labels[0], 1.0f});
    }
    s.threshold = threshold_of(s.records, options_.target, m.form());
    if (s.trainer->examples() == 0) continue;
    CacheState st = s.trainer->state();
    st.threshold = s.threshold;
    out.emplace(s.layer, std::move(st));
  }
  return out;
}

std::vector<TrainingCaches::LayerReport> TrainingCaches::report() const {
  std::vector<LayerReport> out;
  for (const Slot& s : slots_) {
    LayerReport r;
    r.layer = s.layer;
    r.examples = s.trainer->examples();
    r.hot = s.trainer->current().hot().size();
    r.records = s.records.size();
    r.threshold = s.threshold;
    for (const auto& rec : s.records)
      if (rec.confidence >= r.threshold) {
        ++r.hits;
        r.agreed += rec.agreed;
      }
    out.push_back(r);
  }
  return out;
}

}  // namespace glide::cache
