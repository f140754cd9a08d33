#include "engine/wide_centroids.h"

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "common/error.h"
#include "engine/csr_transpose.h"

namespace glide::engine {

namespace {

using Entry = std::pair<std::uint32_t, float>;  // (feature, weight) of one label

// Keeps the entries of at least `min_weight` times the largest, at most `keep` of them (the
// largest), in their order unless more than `keep` pass.
void prune(std::vector<Entry>& entries, std::size_t keep, float min_weight) {
  float largest = 0;
  for (const Entry& e : entries) largest = std::max(largest, std::abs(e.second));
  std::erase_if(entries, [&](const Entry& e) { return std::abs(e.second) < min_weight * largest; });
  const auto larger = [](const Entry& a, const Entry& b) {
    return std::abs(a.second) > std::abs(b.second) ||
           (std::abs(a.second) == std::abs(b.second) && a.first < b.first);
  };
  if (entries.size() > keep) {
    std::nth_element(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(keep),
                     entries.end(), larger);
    entries.resize(keep);
  }
}

// Label l's centroid entries, unscaled: the sum of its points' inputs, each value times
// share(i, q) (point i's q-th nonzero), pruned (prune()).
template <class Share>
void centroid(std::span<const std::uint32_t> points, const data::Dataset& train, std::size_t keep,
              float min_weight, const Share& share, std::vector<float>& acc,
              std::vector<std::uint32_t>& touched, std::vector<Entry>& out) {
  touched.clear();
  for (const std::uint32_t i : points) {
    const data::SparseView x = train.features(i);
    for (std::size_t q = 0; q < x.size(); ++q) {
      const std::uint32_t f = x.ids[q];
      if (acc[f] == 0) touched.push_back(f);
      acc[f] += x.values[q] * share(i, q);
      if (acc[f] == 0) acc[f] = 1e-30f;  // stays marked as touched
    }
  }
  out.clear();
  for (const std::uint32_t f : touched) {
    out.emplace_back(f, acc[f]);
    acc[f] = 0;
  }
  prune(out, keep, min_weight);
}

// The weight of feature f in a label's entries sorted by feature (0 when absent).
float weight_of(const std::vector<Entry>& sorted, std::uint32_t f) {
  const auto it = std::lower_bound(sorted.begin(), sorted.end(), f,
                                   [](const Entry& e, std::uint32_t g) { return e.first < g; });
  return it != sorted.end() && it->first == f ? it->second : 0.0f;
}

// The labels ordered by the feature of their largest weight (ties in id order). Labels in one
// run of it tend to be each other's neighbours, so visiting them in this order keeps what they
// read in cache; the order changes no label's result.
std::vector<std::uint32_t> by_largest_feature(const LabelEntries& per_label) {
  const std::uint32_t num_labels = static_cast<std::uint32_t>(per_label.size());
  std::vector<std::uint32_t> order(num_labels), top(num_labels, 0);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_labels, 4096), [&](const auto& r) {
    for (std::uint32_t l = r.begin(); l < r.end(); ++l) {
      order[l] = l;
      float largest = -1;
      for (const Entry& e : per_label[l])
        if (std::abs(e.second) > largest) {
          largest = std::abs(e.second);
          top[l] = e.first;
        }
    }
  });
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return top[a] < top[b]; });
  return order;
}

}  // namespace

void label_sums_by_round(const data::Dataset& train, std::uint32_t num_features,
                         std::uint32_t num_labels, const WideOptions& options,
                         const std::vector<bool>& held, bool every_round,
                         const std::function<bool(std::uint32_t, LabelEntries&&)>& visit) {
  // The points of each label (label-major CSR).
  const auto used = [&](std::size_t i) { return held.empty() || !held[i]; };
  std::uint64_t pairs = 0;
  for (std::size_t i = 0; i < train.num_points(); ++i)
    if (used(i)) pairs += train.labels(i).size();
  std::vector<std::uint32_t> points(pairs);
  const std::vector<std::uint64_t> point_offsets = transpose_rows(
      train.num_points(), num_labels,
      [&](std::size_t i) { return used(i) ? train.labels(i).size() : std::size_t{0}; },
      [&](std::size_t i, std::size_t k) { return train.labels(i)[k]; },
      [&](std::size_t i, std::size_t, std::uint64_t at) {
        points[at] = static_cast<std::uint32_t>(i);
      });
  struct Local {
    std::vector<float> acc;
    std::vector<std::uint32_t> touched;
  };
  tbb::enumerable_thread_specific<Local> locals;
  // Every label's centroid with share(l, i, q), pruned as the options say or (last = false) whole
  // and sorted by feature.
  const auto sums = [&](const auto& share, bool last) {
    LabelEntries per_label(num_labels);
    const std::size_t keep = last ? options.max_per_label : ~std::size_t{0};
    const float min_weight = last ? options.min_weight : 0.0f;
    tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_labels, 256), [&](const auto& r) {
      Local& t = locals.local();
      if (t.acc.size() != num_features) t.acc.assign(num_features, 0.0f);
      for (std::uint32_t l = r.begin(); l < r.end(); ++l) {
        const std::span<const std::uint32_t> mine(points.data() + point_offsets[l],
                                                  point_offsets[l + 1] - point_offsets[l]);
        if (mine.empty()) continue;
        centroid(
            mine, train, keep, min_weight,
            [&](std::uint32_t i, std::size_t q) { return share(l, i, q); }, t.acc, t.touched,
            per_label[l]);
        if (!last) std::sort(per_label[l].begin(), per_label[l].end());
      }
    });
    return per_label;
  };
  const auto whole = [](std::uint32_t, std::uint32_t, std::size_t) { return 1.0f; };
  if (options.share_rounds == 0) {
    visit(0u, sums(whole, true));
    return;
  }

  // The background: the feature distribution of the points used.
  std::vector<double> background(num_features, 0.0);
  double total = 0;
  for (std::size_t i = 0; i < train.num_points(); ++i) {
    if (!used(i)) continue;
    const data::SparseView x = train.features(i);
    for (std::size_t q = 0; q < x.size(); ++q) background[x.ids[q]] += x.values[q];
  }
  for (const double b : background) total += b;
  for (double& b : background) b /= std::max(total, 1e-30);

  if (const std::string why = share_rounds_obstacle(train, options); !why.empty())
    fail("wide layer: share rounds cannot run: " + why +
         "; set network.wide_share_rounds (--wide-share-rounds) to 0");
  LabelEntries last = sums(whole, false);
  // The pruned copy of `last` for visit.
  const auto visit_pruned = [&](std::uint32_t round) {
    LabelEntries pruned(last.size());
    tbb::parallel_for(std::size_t{0}, pruned.size(), [&](std::size_t l) {
      pruned[l] = last[l];
      prune(pruned[l], options.max_per_label, options.min_weight);
    });
    return visit(round, std::move(pruned));
  };
  if (every_round && !visit_pruned(0)) return;
  std::vector<float> factor(train.values.size());  // per nonzero of train
  std::vector<float> inv_mass(num_labels);         // 1 / a label's summed weights
  for (std::uint32_t round = 0; round < options.share_rounds; ++round) {
    tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_labels, 4096), [&](const auto& r) {
      for (std::uint32_t l = r.begin(); l < r.end(); ++l) {
        double m = 0;
        for (const Entry& e : last[l]) m += e.second;
        inv_mass[l] = m > 0 ? static_cast<float>(1 / m) : 0.0f;
      }
    });
    // Point i's nonzero (q, feature f) goes to its label l in proportion to P_l(f); factor holds
    // K / (b K / (1 - b) bg(f) + sum over its labels m of P_m(f)), K its label count, b the
    // background share, so that label l's part is x P_l(f) factor (K: a feature every label
    // explains equally keeps its whole value in each, as without shares).
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, train.num_points(), 64),
                      [&](const auto& r) {
                        for (std::size_t i = r.begin(); i < r.end(); ++i) {
                          if (!used(i)) continue;
                          const data::SparseView x = train.features(i);
                          const auto y = train.labels(i);
                          const double K = static_cast<double>(y.size());
                          const double c = kBackgroundShare * K / (1 - kBackgroundShare);
                          float* out = factor.data() + train.row_offsets[i];
                          for (std::size_t q = 0; q < x.size(); ++q) {
                            double d = c * background[x.ids[q]];
                            for (const std::uint32_t m : y)
                              d += double(weight_of(last[m], x.ids[q])) * inv_mass[m];
                            out[q] = d > 0 ? static_cast<float>(K / d) : 0.0f;
                          }
                        }
                      });
    const bool final_round = round + 1 == options.share_rounds;
    LabelEntries next = sums(
        [&](std::uint32_t l, std::uint32_t i, std::size_t q) {
          const std::uint32_t f = train.features(i).ids[q];
          return factor[train.row_offsets[i] + q] * weight_of(last[l], f) * inv_mass[l];
        },
        final_round);
    if (final_round) {
      visit(round + 1, std::move(next));
      return;
    }
    last = std::move(next);
    if (every_round && !visit_pruned(round + 1)) return;
  }
}

std::uint64_t share_entries(const data::Dataset& train) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < train.num_points(); ++i)
    n += std::uint64_t{train.features(i).size()} * train.labels(i).size();
  return n;
}

std::string share_rounds_obstacle(const data::Dataset& train, const WideOptions& options) {
  const std::uint64_t entries = share_entries(train);
  if (entries > options.max_share_entries)
    return "they would hold " + std::to_string(entries) +
           " (label, feature) sums, over the limit of " + std::to_string(options.max_share_entries);
  for (std::size_t i = 0; i < train.num_points(); ++i) {
    const data::SparseView x = train.features(i);
    for (std::size_t q = 0; q < x.size(); ++q)
      if (!(x.values[q] >= 0))
        return "point " + std::to_string(i) + " has value " + std::to_string(x.values[q]) +
               " at feature " + std::to_string(x.ids[q]) + " (they need values >= 0)";
  }
  return {};
}

LabelEntries label_sums(const data::Dataset& train, std::uint32_t num_features,
                        std::uint32_t num_labels, const WideOptions& options,
                        const std::vector<bool>& held) {
  LabelEntries out;
  label_sums_by_round(train, num_features, num_labels, options, held, false,
                      [&](std::uint32_t, LabelEntries&& sums) {
                        out = std::move(sums);
                        return true;
                      });
  return out;
}

LabelNeighbours nearest_labels(const LabelEntries& per_label, std::uint32_t num_features,
                               const LabelNeighbours* known) {
  const std::uint32_t num_labels = static_cast<std::uint32_t>(per_label.size());
  if (known && (known->count.size() != num_labels ||
                known->ids.size() != std::size_t{num_labels} * kContrastNeighbours))
    fail("wide layer: known neighbours for " + std::to_string(known->count.size()) +
         " labels, the layer has " + std::to_string(num_labels));
  const std::vector<double> norms = norms_of(per_label);
  // Each label's kContrastQuery largest unit weights, and the same feature-major: the nearest
  // labels are those whose largest weights meet the label's (the full centroids' dot products
  // cost several times more for the same neighbours).
  LabelEntries query(num_labels);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_labels, 256), [&](const auto& r) {
    for (std::uint32_t l = r.begin(); l < r.end(); ++l) {
      query[l] = per_label[l];
      prune(query[l], kContrastQuery, 0.0f);
      for (Entry& e : query[l]) e.second = static_cast<float>(e.second / norms[l]);
    }
  });
  // The index names labels by their rank among those with entries (ids in the same order): the
  // dot products then fit a smaller array, which the search updates at random (at amazon670k
  // 251,632 of 670,091 labels, 1 MB instead of 2.7: within a core's L2).
  const std::vector<std::uint32_t> with_entries = labels_with_entries(query);
  std::vector<std::uint32_t> rank_of(num_labels, 0);
  for (std::uint32_t k = 0; k < with_entries.size(); ++k) rank_of[with_entries[k]] = k;
  const std::uint32_t ranked_labels = static_cast<std::uint32_t>(with_entries.size());
  std::uint64_t entries = 0;
  for (const auto& q : query) entries += q.size();
  std::vector<std::pair<std::uint32_t, float>> index(entries);  // (rank, unit weight)
  const std::vector<std::uint64_t> offsets = transpose_rows(
      num_labels, num_features, [&](std::size_t l) { return query[l].size(); },
      [&](std::size_t l, std::size_t k) { return query[l][k].first; },
      [&](std::size_t l, std::size_t k, std::uint64_t at) {
        index[at] = {rank_of[l], query[l][k].second};
      });
  struct Local {
    std::vector<float> dot;  // per ranked label; zero between uses
    std::vector<std::uint32_t> touched;
    std::vector<std::pair<float, std::uint32_t>> ranked;
  };
  tbb::enumerable_thread_specific<Local> locals;
  LabelNeighbours out;
  if (known) {
    out = *known;
  } else {
    out.ids.assign(std::size_t{num_labels} * kContrastNeighbours, 0);
    out.count.assign(num_labels, 0);
  }
  // Labels whose largest weights share a feature read the same index lists: searched one
  // after another, those lists are still in cache.
  const std::vector<std::uint32_t> order = by_largest_feature(query);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_labels, 64), [&](const auto& r) {
    Local& t = locals.local();
    if (t.dot.size() != ranked_labels) {
      t.dot.assign(ranked_labels, 0.0f);
      t.touched.assign(std::size_t{ranked_labels} + 1, 0);
    }
    for (std::uint32_t at = r.begin(); at < r.end(); ++at) {
      const std::uint32_t l = order[at];
      if (known && known->count[l] > 0) continue;
      const std::uint32_t self = rank_of[l];
      // Without branches on the data: each label is written to `touched` every time, and kept
      // the first time (its product still zero); a sum back at exactly zero stays marked.
      std::size_t n = 0;
      for (const auto& [f, u] : query[l])
        for (std::uint64_t e = offsets[f]; e < offsets[f + 1]; ++e) {
          const auto [m, w] = index[e];
          float& d = t.dot[m];
          t.touched[n] = m;
          n += d == 0.0f;
          d += u * w;
          d = d == 0.0f ? 1e-30f : d;
        }
      t.ranked.clear();
      for (std::size_t j = 0; j < n; ++j) {
        const std::uint32_t m = t.touched[j];
        if (m != self) t.ranked.emplace_back(t.dot[m], m);
        t.dot[m] = 0;
      }
      const std::size_t k = std::min(kContrastNeighbours, t.ranked.size());
      std::partial_sort(t.ranked.begin(), t.ranked.begin() + static_cast<std::ptrdiff_t>(k),
                        t.ranked.end(), [](const auto& a, const auto& b) {
                          return a.first > b.first || (a.first == b.first && a.second < b.second);
                        });
      for (std::size_t j = 0; j < k; ++j)
        out.ids[std::size_t{l} * kContrastNeighbours + j] = with_entries[t.ranked[j].second];
      out.count[l] = static_cast<std::uint8_t>(k);
    }
  });
  return out;
}

LabelEntries subtract_neighbours(const LabelEntries& per_label, const LabelNeighbours& neighbours,
                                 std::uint32_t num_features, float strength,
                                 const WideOptions& options) {
  const std::uint32_t num_labels = static_cast<std::uint32_t>(per_label.size());
  if (neighbours.count.size() != num_labels)
    fail("wide layer: contrast neighbours for " + std::to_string(neighbours.count.size()) +
         " labels, the layer has " + std::to_string(num_labels));
  const std::vector<double> norms = norms_of(per_label);
  tbb::enumerable_thread_specific<std::vector<float>> means;  // per feature; zero between uses
  LabelEntries out(num_labels);
  const std::vector<std::uint32_t> order = by_largest_feature(per_label);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_labels, 64), [&](const auto& r) {
    std::vector<float>& mean = means.local();
    if (mean.size() != num_features) mean.assign(num_features, 0.0f);
    for (std::uint32_t at = r.begin(); at < r.end(); ++at) {
      const std::uint32_t l = order[at];
      out[l] = per_label[l];
      const std::size_t k = neighbours.count[l];
      if (out[l].empty() || k == 0) continue;
      const std::uint32_t* ids = neighbours.ids.data() + std::size_t{l} * kContrastNeighbours;
      // Their mean unit centroid on the label's own features.
      for (std::size_t j = 0; j < k; ++j)
        for (const Entry& e : per_label[ids[j]])
          mean[e.first] += static_cast<float>(e.second / norms[ids[j]]);
      const double scale = strength * norms[l] / static_cast<double>(k);
      for (Entry& e : out[l]) e.second -= static_cast<float>(scale * mean[e.first]);
      for (std::size_t j = 0; j < k; ++j)
        for (const Entry& e : per_label[ids[j]]) mean[e.first] = 0;
      prune(out[l], options.max_per_label, options.min_weight);
    }
  });
  return out;
}

void contrast_with_neighbours(LabelEntries& per_label, std::uint32_t num_features, float strength,
                              const WideOptions& options, const LabelNeighbours* known) {
  const LabelNeighbours neighbours = nearest_labels(per_label, num_features, known);
  per_label = subtract_neighbours(per_label, neighbours, num_features, strength, options);
}

std::vector<std::uint32_t> labels_with_entries(const LabelEntries& per_label) {
  std::vector<std::uint32_t> labels;
  for (std::uint32_t l = 0; l < per_label.size(); ++l)
    if (!per_label[l].empty()) labels.push_back(l);
  return labels;
}

std::vector<double> norms_of(const LabelEntries& per_label) {
  std::vector<double> norms(per_label.size(), 0.0);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, per_label.size(), 4096), [&](const auto& r) {
    for (std::size_t l = r.begin(); l < r.end(); ++l) {
      for (const auto& e : per_label[l]) norms[l] += double(e.second) * e.second;
      norms[l] = std::sqrt(norms[l]);
    }
  });
  return norms;
}

double median_of(const std::vector<double>& norms) {
  std::vector<double> nonzero;
  for (const double n : norms)
    if (n > 0) nonzero.push_back(n);
  if (nonzero.empty()) return 1;
  const auto mid = nonzero.begin() + static_cast<std::ptrdiff_t>(nonzero.size() / 2);
  std::nth_element(nonzero.begin(), mid, nonzero.end());
  return *mid;
}

double start_scale(double norm, double median, double power, double init_scale) {
  return norm > 0 ? init_scale * std::pow(norm / median, 1 - power) / norm : 0.0;
}

}  // namespace glide::engine
