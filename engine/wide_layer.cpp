#include "engine/wide_layer.h"

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "common/error.h"

namespace glide::engine {

void WideScores::resize(std::uint32_t labels) {
  if (scores_.size() == labels) return;
  scores_.assign(labels, 0.0f);
  reached_.assign(labels, 0);
  labels_.clear();
}

void WideScores::clear() {
  for (const std::uint32_t l : labels_) {
    scores_[l] = 0;
    reached_[l] = 0;
  }
  labels_.clear();
}

namespace {

using Entry = std::pair<std::uint32_t, float>;  // (feature, weight) of one label

// Label l's centroid entries: the sum of its points' inputs, those of at least `min_weight` times
// its largest, at most `keep` of them (the largest), scaled to norm `scale`.
void centroid(std::span<const std::uint32_t> points, const data::Dataset& train, std::size_t keep,
              float min_weight, float scale, std::vector<float>& acc,
              std::vector<std::uint32_t>& touched, std::vector<Entry>& out) {
  touched.clear();
  for (const std::uint32_t i : points) {
    const data::SparseView x = train.features(i);
    for (std::size_t q = 0; q < x.size(); ++q) {
      const std::uint32_t f = x.ids[q];
      if (acc[f] == 0) touched.push_back(f);
      acc[f] += x.values[q];
      if (acc[f] == 0) acc[f] = 1e-30f;  // stays marked as touched
    }
  }
  out.clear();
  float largest = 0;
  for (const std::uint32_t f : touched) largest = std::max(largest, std::abs(acc[f]));
  for (const std::uint32_t f : touched) {
    if (std::abs(acc[f]) >= min_weight * largest) out.emplace_back(f, acc[f]);
    acc[f] = 0;
  }
  const auto larger = [](const Entry& a, const Entry& b) {
    return std::abs(a.second) > std::abs(b.second) ||
           (std::abs(a.second) == std::abs(b.second) && a.first < b.first);
  };
  if (out.size() > keep) {
    std::nth_element(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(keep), out.end(),
                     larger);
    out.resize(keep);
  }
  double norm = 0;
  for (const auto& e : out) norm += double(e.second) * e.second;
  const float s = norm > 0 ? static_cast<float>(scale / std::sqrt(norm)) : 0.0f;
  for (auto& e : out) e.second *= s;
}

}  // namespace

WideLayer WideLayer::from_centroids(const data::Dataset& train, std::uint32_t num_features,
                                    std::uint32_t num_labels, const WideOptions& options) {
  if (train.num_features > num_features || train.num_labels > num_labels)
    fail("wide layer: the data's dimensions exceed the model's");
  // The points of each label (label-major CSR).
  std::vector<std::uint64_t> point_offsets(std::size_t{num_labels} + 1, 0);
  for (const std::uint32_t y : train.label_ids) ++point_offsets[y + 1];
  for (std::size_t l = 0; l < num_labels; ++l) point_offsets[l + 1] += point_offsets[l];
  std::vector<std::uint32_t> points(train.label_ids.size());
  {
    std::vector<std::uint64_t> next(point_offsets.begin(), point_offsets.end() - 1);
    for (std::size_t i = 0; i < train.num_points(); ++i)
      for (const std::uint32_t y : train.labels(i))
        points[next[y]++] = static_cast<std::uint32_t>(i);
  }
  std::vector<std::vector<Entry>> per_label(num_labels);
  struct Local {
    std::vector<float> acc;
    std::vector<std::uint32_t> touched;
  };
  tbb::enumerable_thread_specific<Local> locals;
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_labels, 256), [&](const auto& r) {
    Local& t = locals.local();
    if (t.acc.size() != num_features) t.acc.assign(num_features, 0.0f);
    for (std::uint32_t l = r.begin(); l < r.end(); ++l) {
      const std::span<const std::uint32_t> mine(points.data() + point_offsets[l],
                                                point_offsets[l + 1] - point_offsets[l]);
      if (!mine.empty())
        centroid(mine, train, options.max_per_label, options.min_weight, options.init_scale, t.acc,
                 t.touched, per_label[l]);
    }
  });
  // Feature-major: labels ascending within each feature, since labels are visited in order.
  WideLayer w;
  w.num_features_ = num_features;
  w.num_labels_ = num_labels;
  w.offsets_.assign(std::size_t{num_features} + 1, 0);
  for (const auto& entries : per_label)
    for (const auto& [f, v] : entries) ++w.offsets_[f + 1];
  for (std::size_t f = 0; f < num_features; ++f) w.offsets_[f + 1] += w.offsets_[f];
  w.labels_.resize(w.offsets_.back());
  w.weights_.resize(w.offsets_.back());
  std::vector<std::uint64_t> next(w.offsets_.begin(), w.offsets_.end() - 1);
  for (std::uint32_t l = 0; l < num_labels; ++l) {
    for (const auto& [f, v] : per_label[l]) {
      w.labels_[next[f]] = l;
      w.weights_[next[f]++] = v;
    }
    std::vector<Entry>().swap(per_label[l]);
  }
  return w;
}

WideLayer WideLayer::from_arrays(std::uint32_t num_features, std::uint32_t num_labels,
                                 std::vector<std::uint64_t> offsets,
                                 std::vector<std::uint32_t> labels, std::vector<float> weights,
                                 const std::string& what) {
  if (offsets.size() != std::size_t{num_features} + 1)
    fail(what, "has " + std::to_string(offsets.size()) + " offsets for " +
                   std::to_string(num_features) + " features (expected features + 1)");
  if (labels.size() != weights.size())
    fail(what, "has " + std::to_string(labels.size()) + " labels but " +
                   std::to_string(weights.size()) + " weights");
  if (offsets.front() != 0 || offsets.back() != labels.size())
    fail(what,
         "offsets must run from 0 to the entry count (" + std::to_string(labels.size()) + ")");
  for (std::size_t f = 0; f < num_features; ++f) {
    if (offsets[f + 1] < offsets[f]) fail(what, "offsets decrease at feature " + std::to_string(f));
    for (std::uint64_t e = offsets[f]; e < offsets[f + 1]; ++e) {
      if (labels[e] >= num_labels)
        fail(what, "label " + std::to_string(labels[e]) + " of feature " + std::to_string(f) +
                       " is out of range (" + std::to_string(num_labels) + " labels)");
      if (e > offsets[f] && labels[e] <= labels[e - 1])
        fail(what, "the labels of feature " + std::to_string(f) + " are not ascending");
      if (!std::isfinite(weights[e]))
        fail(what, "weight of feature " + std::to_string(f) + ", label " +
                       std::to_string(labels[e]) + " is not finite");
    }
  }
  WideLayer w;
  w.num_features_ = num_features;
  w.num_labels_ = num_labels;
  w.offsets_ = std::move(offsets);
  w.labels_ = std::move(labels);
  w.weights_ = std::move(weights);
  return w;
}

void WideLayer::score(const data::SparseView& x, WideScores& out) const {
  out.resize(num_labels_);
  out.clear();
  for (std::size_t q = 0; q < x.size(); ++q) {
    const std::uint32_t f = x.ids[q];
    if (f >= num_features_) continue;  // the model's features; predictors check inputs first
    const float v = x.values[q];
    for (std::uint64_t e = offsets_[f]; e < offsets_[f + 1]; ++e) {
      const std::uint32_t l = labels_[e];
      if (!out.reached_[l]) {
        out.reached_[l] = 1;
        out.labels_.push_back(l);
      }
      out.scores_[l] += v * weights_[e];
    }
  }
}

void WideLayer::ensure_optimizer_state() {
  if (sums_.size() != weights_.size()) sums_.assign(weights_.size(), 0.0f);
}

void WideLayer::train_step(std::span<const data::SparseView> inputs,
                           std::span<const std::vector<WideHit>> hits,
                           std::span<const std::uint64_t> mask, const float* coef, float lr,
                           float eps) {
  ensure_optimizer_state();
  // (feature, sample, value) of the batch, grouped by feature: each feature's entries are then
  // updated by one thread, once, with the gradient of every sample that has the feature.
  std::vector<std::tuple<std::uint32_t, std::uint32_t, float>> items;
  for (std::size_t s = 0; s < inputs.size(); ++s) {
    if (hits[s].empty()) continue;
    const data::SparseView& x = inputs[s];
    for (std::size_t q = 0; q < x.size(); ++q)
      if (x.ids[q] < num_features_ && offsets_[x.ids[q] + 1] > offsets_[x.ids[q]])
        items.emplace_back(x.ids[q], static_cast<std::uint32_t>(s), x.values[q]);
  }
  std::sort(items.begin(), items.end());
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < items.size(); ++i)
    if (i == 0 || std::get<0>(items[i]) != std::get<0>(items[i - 1])) starts.push_back(i);
  starts.push_back(items.size());
  tbb::enumerable_thread_specific<std::vector<float>> grads;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, starts.size() - 1, 16), [&](const auto& r) {
    std::vector<float>& g = grads.local();
    for (std::size_t k = r.begin(); k < r.end(); ++k) {
      const std::uint32_t f = std::get<0>(items[starts[k]]);
      const std::uint64_t beg = offsets_[f], n = offsets_[f + 1] - beg;
      const std::uint32_t* ls = labels_.data() + beg;
      g.assign(n, 0.0f);
      for (std::size_t i = starts[k]; i < starts[k + 1]; ++i) {
        const auto& [feature, s, v] = items[i];
        const std::vector<WideHit>& h = hits[s];
        // The candidates among the feature's labels, then the sample's hits among those.
        for (std::uint64_t a = 0; a < n; ++a) {
          const std::uint32_t l = ls[a];
          if (!(mask[l >> 6] >> (l & 63) & 1)) continue;
          auto it = std::lower_bound(h.begin(), h.end(), l,
                                     [](const WideHit& x, std::uint32_t y) { return x.label < y; });
          for (; it != h.end() && it->label == l; ++it) g[a] += coef[it->slot] * v;
        }
      }
      float* w = weights_.data() + beg;
      float* sum = sums_.data() + beg;
      for (std::uint64_t a = 0; a < n; ++a) {
        if (g[a] == 0) continue;
        sum[a] += g[a] * g[a];
        w[a] -= lr * g[a] / (std::sqrt(sum[a]) + eps);
      }
    }
  });
}

}  // namespace glide::engine
