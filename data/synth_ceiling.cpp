#include "data/synth_ceiling.h"

#include <tbb/combinable.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "data/threads.h"

namespace glide::data {

namespace {

// Sorts (key, value) pairs by key and sums the values of equal keys into one pair.
template <class T>
void sum_by_key(std::vector<std::pair<std::uint32_t, T>>& pairs) {
  std::sort(pairs.begin(), pairs.end());
  std::size_t kept = 0;
  for (std::size_t j = 0; j < pairs.size(); ++j) {
    if (kept && pairs[kept - 1].first == pairs[j].first)
      pairs[kept - 1].second += pairs[j].second;
    else
      pairs[kept++] = pairs[j];
  }
  pairs.resize(kept);
}

// Label l's profile as distinct (feature, probability) pairs: a feature drawn twice into the
// profile is the sum of its weights.
std::vector<std::pair<std::uint32_t, float>> distinct_profile(const XcGenerator& g,
                                                              std::uint32_t l) {
  const LabelProfile p = g.profile(l);
  std::vector<std::pair<std::uint32_t, float>> out;
  for (std::size_t j = 0; j < p.features.size(); ++j) out.emplace_back(p.features[j], p.weights[j]);
  sum_by_key(out);
  return out;
}

// Precision at 1 and 5 of one ranking against a point's labels.
std::pair<double, double> precision(std::span<const std::uint32_t> ranked,
                                    std::span<const std::uint32_t> labels) {
  double p1 = 0, p5 = 0;
  for (std::size_t t = 0; t < ranked.size() && t < 5; ++t) {
    if (std::find(labels.begin(), labels.end(), ranked[t]) == labels.end()) continue;
    if (t == 0) p1 = 1;
    p5 += 0.2;
  }
  return {p1, p5};
}

}  // namespace

PlantedScorer::PlantedScorer(const XcGenerator& generator, int threads) : generator_(generator) {
  const std::uint32_t L = generator.config().labels, F = generator.config().features;
  std::vector<std::vector<std::pair<std::uint32_t, float>>> profiles(L);
  with_threads(threads, [&] {
    tbb::parallel_for(std::uint32_t{0}, L,
                      [&](std::uint32_t l) { profiles[l] = distinct_profile(generator, l); });
  });
  offsets_.assign(std::size_t{F} + 1, 0);
  for (const auto& p : profiles)
    for (const auto& e : p) ++offsets_[e.first + 1];
  for (std::size_t f = 0; f < F; ++f) offsets_[f + 1] += offsets_[f];
  entries_.resize(offsets_.back());
  std::vector<std::uint64_t> next(offsets_.begin(), offsets_.end() - 1);
  for (std::uint32_t l = 0; l < L; ++l)
    for (const auto& [f, w] : profiles[l]) entries_[next[f]++] = {l, w};
}

double PlantedScorer::evidence(std::uint32_t f, float w) const {
  const XcSynthConfig& c = generator_.config();
  const double label_share = (1 - c.noise) / std::max(1.0, c.mean_labels);
  // A floor on the background keeps noise 0 finite: the profile's evidence then dominates.
  const double background = c.noise * generator_.background_probability(f) + 1e-12;
  return std::log1p(label_share * w / background);
}

std::vector<std::uint32_t> PlantedScorer::top(const SparseView& x, std::size_t k,
                                              std::span<const std::uint8_t> allowed) const {
  std::vector<std::pair<std::uint32_t, double>> reached;
  for (std::size_t q = 0; q < x.size(); ++q) {
    const std::uint32_t f = x.ids[q];
    if (f + 1 >= offsets_.size()) continue;
    for (std::uint64_t e = offsets_[f]; e < offsets_[f + 1]; ++e) {
      const auto [l, w] = entries_[e];
      if (allowed.empty() || allowed[l]) reached.emplace_back(l, evidence(f, w));
    }
  }
  sum_by_key(reached);  // each label's evidence
  const std::size_t n = std::min(k, reached.size());
  std::partial_sort(reached.begin(), reached.begin() + static_cast<std::ptrdiff_t>(n),
                    reached.end(), [](const auto& a, const auto& b) {
                      return a.second != b.second ? a.second > b.second : a.first < b.first;
                    });
  std::vector<std::uint32_t> out(n);
  for (std::size_t j = 0; j < n; ++j) out[j] = reached[j].first;
  return out;
}

double PlantedScorer::score(const SparseView& x, std::uint32_t l) const {
  double s = 0;
  for (const auto& [f, w] : distinct_profile(generator_, l))
    for (std::size_t q = 0; q < x.size(); ++q)
      if (x.ids[q] == f) s += evidence(f, w);
  return s;
}

PlantedCeiling planted_ceiling(const XcGenerator& generator, const Dataset& train,
                               const Dataset& test, int threads) {
  if (generator.config().types > 0)
    fail("planted ceiling: data of item types have no label profiles to score with");
  const PlantedScorer scorer(generator, threads);
  std::vector<std::uint8_t> seen(generator.config().labels, 0);
  for (const std::uint32_t l : train.label_ids)
    if (l < seen.size()) seen[l] = 1;
  PlantedCeiling c;
  for (const std::uint8_t s : seen) c.seen_labels += s;
  struct Sums {
    double p1_all = 0, p5_all = 0, p1_seen = 0, p5_seen = 0;
  };
  tbb::combinable<Sums> sums;
  with_threads(threads, [&] {
    tbb::parallel_for(std::size_t{0}, test.num_points(), [&](std::size_t i) {
      Sums& s = sums.local();
      const auto labels = test.labels(i);
      const auto [a1, a5] = precision(scorer.top(test.features(i), 5), labels);
      const auto [s1, s5] = precision(scorer.top(test.features(i), 5, seen), labels);
      s.p1_all += a1, s.p5_all += a5, s.p1_seen += s1, s.p5_seen += s5;
    });
  });
  const Sums total = sums.combine([](Sums a, const Sums& b) {
    a.p1_all += b.p1_all, a.p5_all += b.p5_all, a.p1_seen += b.p1_seen, a.p5_seen += b.p5_seen;
    return a;
  });
  const double n = std::max<double>(1, static_cast<double>(test.num_points()));
  c.p_at_1_all = total.p1_all / n;
  c.p_at_5_all = total.p5_all / n;
  c.p_at_1_seen = total.p1_seen / n;
  c.p_at_5_seen = total.p5_seen / n;
  return c;
}

}  // namespace glide::data
