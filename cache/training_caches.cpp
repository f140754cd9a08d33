#include "cache/training_caches.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "engine/evaluator.h"
#include "engine/kernels.h"

namespace glide::cache {

namespace {
// No evidence yet: no hits until a server measured some.
double threshold_of(const std::vector<CalibrationRecord>& records, double target) {
  const double t = calibrate_threshold(records, target);
  return t > 0 ? t : 1 - 1e-6;
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

void TrainingCaches::on_batch(std::span<const data::SparseView> inputs) {
  if (inputs.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  picked_.clear();
  const std::size_t want = options_.rows_per_batch ? options_.rows_per_batch : inputs.size();
  if (want >= inputs.size()) {
    picked_.assign(inputs.begin(), inputs.end());
  } else {
    for (std::size_t i = 0; i < want; ++i)
      picked_.push_back(inputs[rng_.below(static_cast<std::uint32_t>(inputs.size()))]);
  }
  const std::size_t n = picked_.size();
  net_.forward_hidden(picked_, acts_, engine::kernels());
  std::vector<engine::Prediction> top;
  engine::predict_topk_from_hidden(net_, acts_, n, 1, engine::EvalMode::kExact, nullptr, top);
  engine::Prediction pred;
  for (Slot& s : slots_) {
    for (std::size_t r = 0; r < n; ++r) {
      if (top[r].labels.empty()) continue;
      const std::uint32_t label = top[r].labels[0];
      const float* act = acts_.row(s.layer, r);
      const CacheModel& m = s.trainer->current();
      if (m.classes() > 1) {
        bool hot = false;
        const float conf = m.lookup(act, 1, pred, &hot, scratch_);
        if (hot) {
          const CalibrationRecord rec{conf, pred.labels[0] == label, 1.0f};
          if (s.records.size() < options_.records) {
            s.records.push_back(rec);
          } else {
            s.records[s.next] = rec;
            s.next = (s.next + 1) % s.records.size();
          }
        }
      }
      s.trainer->add(act, label);
    }
  }
  rows_ += n;
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

CacheStates TrainingCaches::states() const {
  CacheStates out;
  for (const Slot& s : slots_) {
    if (s.trainer->examples() == 0) continue;
    CacheState st = s.trainer->state();
    st.threshold = threshold_of(s.records, options_.target);
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
    r.threshold = threshold_of(s.records, options_.target);
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
