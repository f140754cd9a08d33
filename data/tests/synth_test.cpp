#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "data/shuffle.h"
#include "data/stats.h"
#include "data/synth_rec.h"
#include "data/synth_xc.h"
#include "data/tests/test_util.h"

using namespace glide::data;

TEST_CASE("XC generator: deterministic for a seed, whatever the thread count or slicing") {
  XcSynthConfig c = xc_preset("tiny");
  c.points = 1500;
  const XcGenerator gen(c);
  const Dataset a = gen.train(1), b = gen.train(2), d = gen.train(0);
  CHECK(a == b);
  CHECK(a == d);
  a.validate();
  // Points are functions of their index: a slice equals the same points of the whole.
  const Dataset tail = gen.generate(1000, 500);
  std::vector<std::size_t> idx(500);
  for (std::size_t i = 0; i < 500; ++i) idx[i] = 1000 + i;
  CHECK(tail == a.subset(idx));
  XcSynthConfig other = c;
  other.seed = 2;
  CHECK(!(synth_xc(other) == a));
  // Test points share the model but not the draws.
  const Dataset test = gen.test(200);
  CHECK(test.num_points() == 200);
  CHECK(!(test == gen.generate(0, 200)));
  CHECK(synth_xc_split(c, 200).test == test);
}

TEST_CASE("XC generator: statistics match the configuration") {
  XcSynthConfig c;
  c.points = 20000;
  c.features = 5000;
  c.labels = 2000;
  c.mean_features = 30;
  c.mean_labels = 2;
  c.zipf_exponent = 1.0;
  const DatasetStats s = compute_stats(synth_xc(c));
  CHECK(s.points == 20000);
  CHECK(s.mean_nonzeros == doctest::Approx(30).epsilon(0.05));
  CHECK(s.mean_labels == doctest::Approx(2).epsilon(0.05));
  CHECK(s.zipf_exponent == doctest::Approx(1.0).epsilon(0.12));
  c.zipf_exponent = 0.6;
  CHECK(compute_stats(synth_xc(c)).zipf_exponent == doctest::Approx(0.6).epsilon(0.12));
  // Values are positive and each point is L2-normalised.
  const Dataset d = synth_xc(xc_preset("tiny"));
  for (std::size_t i = 0; i < 50; ++i) {
    double norm = 0;
    for (float v : d.features(i).values) {
      CHECK(v > 0);
      norm += double(v) * v;
    }
    CHECK(norm == doctest::Approx(1.0).epsilon(1e-4));
  }
}

namespace {

// The argmax of each test point's overlap with the labels' profiles, each cut to its first `cut`
// entries (all when larger): label ids, ties to the lowest.
std::vector<std::uint32_t> nearest_profile(const XcGenerator& gen, const Dataset& test,
                                           std::size_t cut) {
  const XcSynthConfig& c = gen.config();
  std::vector<std::vector<std::pair<std::uint32_t, float>>> by_feature(c.features);
  for (std::uint32_t l = 0; l < c.labels; ++l) {
    const LabelProfile p = gen.profile(l);
    for (std::size_t j = 0; j < p.features.size() && j < cut; ++j)
      by_feature[p.features[j]].emplace_back(l, p.weights[j]);
  }
  std::vector<std::uint32_t> best(test.num_points());
  std::vector<double> score(c.labels);
  for (std::size_t i = 0; i < test.num_points(); ++i) {
    std::fill(score.begin(), score.end(), 0.0);
    const SparseView f = test.features(i);
    for (std::size_t k = 0; k < f.size(); ++k)
      for (const auto& [l, w] : by_feature[f.ids[k]]) score[l] += f.values[k] * w;
    best[i] =
        static_cast<std::uint32_t>(std::max_element(score.begin(), score.end()) - score.begin());
  }
  return best;
}

// A small shape the planted-structure tests share: 5,000 features, 500 labels, 25 features a
// point.
XcSynthConfig small_shape(std::uint64_t points) {
  XcSynthConfig c;
  c.points = points;
  c.features = 5000;
  c.labels = 500;
  c.mean_features = 25;
  return c;
}

}  // namespace

TEST_CASE("XC generator: test points are predictable from their features") {
  XcSynthConfig c = small_shape(5000);
  c.mean_labels = 2;
  const XcGenerator gen(c);
  const Dataset train = gen.train(), test = gen.test(1000);
  // Nearest profile: each label scored by the overlap of the point with the label's profile.
  const std::vector<std::uint32_t> best = nearest_profile(gen, test, ~std::size_t{0});
  std::vector<std::uint32_t> label_count(c.labels);
  for (auto l : train.label_ids) ++label_count[l];
  const std::uint32_t most_frequent = static_cast<std::uint32_t>(
      std::max_element(label_count.begin(), label_count.end()) - label_count.begin());
  std::size_t hits = 0, baseline = 0;
  for (std::size_t i = 0; i < test.num_points(); ++i) {
    const auto labels = test.labels(i);
    hits += std::find(labels.begin(), labels.end(), best[i]) != labels.end();
    baseline += std::find(labels.begin(), labels.end(), most_frequent) != labels.end();
  }
  const double p1 = hits / 1000.0, base = baseline / 1000.0;
  MESSAGE("nearest-profile P@1 " << p1 << ", most-frequent-label baseline " << base);
  CHECK(p1 > 0.7);
  CHECK(p1 > 3 * base);
}

TEST_CASE("XC generator: label families share a profile and differ by their own") {
  XcSynthConfig c = small_shape(4000);
  c.mean_labels = 2;
  c.family_size = 5;
  c.family_share = 0.8;
  const XcGenerator gen(c);
  const std::uint32_t P = gen.profile_size();
  // Labels 10..14 are one family: the same first P entries, then their own.
  const LabelProfile a = gen.profile(10), b = gen.profile(14), other = gen.profile(15);
  CHECK(a.family == P);
  REQUIRE(a.features.size() == 2 * P);
  CHECK(std::equal(a.features.begin(), a.features.begin() + P, b.features.begin()));
  CHECK(!std::equal(a.features.begin(), a.features.begin() + P, other.features.begin()));
  CHECK(!std::equal(a.features.begin() + P, a.features.end(), b.features.begin() + P));
  double family = 0, own = 0;
  for (std::uint32_t j = 0; j < 2 * P; ++j) (j < P ? family : own) += a.weights[j];
  CHECK(family == doctest::Approx(0.8).epsilon(1e-5));
  CHECK(own == doctest::Approx(0.2).epsilon(1e-5));
  // The points draw as the profiles say: the family part finds a point's family, and only the
  // own part tells the siblings apart.
  const Dataset test = gen.test(1000);
  const std::vector<std::uint32_t> whole = nearest_profile(gen, test, 2 * P),
                                   family_only = nearest_profile(gen, test, P);
  std::size_t whole_hits = 0, family_hits = 0, family_found = 0;
  for (std::size_t i = 0; i < test.num_points(); ++i) {
    const auto labels = test.labels(i);
    const auto has = [&](std::uint32_t l) {
      return std::find(labels.begin(), labels.end(), l) != labels.end();
    };
    whole_hits += has(whole[i]);
    family_hits += has(family_only[i]);
    family_found += std::any_of(labels.begin(), labels.end(), [&](std::uint32_t l) {
      return l / c.family_size == family_only[i] / c.family_size;
    });
  }
  MESSAGE("nearest profile P@1 " << whole_hits / 1000.0 << ", family part alone "
                                 << family_hits / 1000.0 << " (its family found "
                                 << family_found / 1000.0 << ")");
  CHECK(family_found > 950);
  CHECK(whole_hits > 700);
  CHECK(whole_hits > family_hits + 300);
  // Without families the generator is as before: one profile of P entries.
  XcSynthConfig plain = c;
  plain.family_size = 1;
  const LabelProfile p = XcGenerator(plain).profile(10);
  CHECK(p.family == 0);
  CHECK(p.features.size() == P);
  CHECK(std::equal(p.features.begin(), p.features.end(), a.features.begin() + P));
}

TEST_CASE("XC generator: with item types, a point takes its type's labels and features") {
  XcSynthConfig c = small_shape(3000);
  c.types = 40;
  const XcGenerator gen(c);
  const Dataset train = gen.train(2);
  // Each point's label set is one of the types'; the first type's is the most common.
  std::map<std::vector<std::uint32_t>, std::vector<std::size_t>> by_labels;
  for (std::size_t i = 0; i < train.num_points(); ++i) {
    const auto l = train.labels(i);
    by_labels[{l.begin(), l.end()}].push_back(i);
  }
  std::set<std::vector<std::uint32_t>> type_sets;
  std::map<std::uint32_t, int> types_with;  // label -> types that have it
  for (std::uint32_t t = 0; t < c.types; ++t) {
    const std::vector<std::uint32_t> labels = gen.type_labels(t);
    CHECK(std::is_sorted(labels.begin(), labels.end()));
    CHECK_FALSE(labels.empty());
    type_sets.insert(labels);
    for (const std::uint32_t l : labels) ++types_with[l];
  }
  for (const auto& [labels, points] : by_labels) CHECK(type_sets.count(labels) == 1);
  CHECK(by_labels[gen.type_labels(0)].size() > train.num_points() / 40);
  // Labels are facets: the most common one belongs to several types.
  int most = 0;
  for (const auto& [l, n] : types_with) most = std::max(most, n);
  CHECK(most >= 3);
  // Features come from the type's profile or the background (a profile of 17 features cannot
  // supply all of a point's 25): the type's profile holds many of them, another type's few.
  std::size_t own = 0, other = 0, nonzeros = 0;
  for (std::uint32_t t = 0; t < 5; ++t) {
    const LabelProfile p = gen.type_profile(t), q = gen.type_profile(t + 5);
    const std::set<std::uint32_t> mine(p.features.begin(), p.features.end()),
        theirs(q.features.begin(), q.features.end());
    for (const std::size_t i : by_labels[gen.type_labels(t)]) {
      const auto x = train.features(i);
      for (std::size_t k = 0; k < x.size(); ++k) {
        own += mine.count(x.ids[k]);
        other += theirs.count(x.ids[k]);
      }
      nonzeros += x.size();
    }
  }
  REQUIRE(nonzeros > 0);
  MESSAGE("share of features in the type's profile " << double(own) / nonzeros << ", in another's "
                                                     << double(other) / nonzeros);
  CHECK(double(own) / nonzeros > 0.5);
  CHECK(other * 10 < own);
  // Deterministic for a seed, whatever the thread count.
  const Dataset again = gen.train(1);
  CHECK(again.feature_ids == train.feature_ids);
  CHECK(again.label_ids == train.label_ids);
}

TEST_CASE("XC generator: bad configurations and presets are errors") {
  XcSynthConfig c;
  c.labels = 0;
  CHECK(glide::data::test::error_of([&] { XcGenerator g(c); }) ==
        "synthetic data: labels must be positive");
  CHECK(glide::data::test::error_of([] { xc_preset("huge"); }) ==
        "unknown preset 'huge' (expected default, amazon670k, families, facets or tiny)");
  c = XcSynthConfig();
  c.family_size = 0;
  CHECK(glide::data::test::error_of([&] { XcGenerator g(c); }) ==
        "synthetic data: family size must be at least 1");
  c.family_size = 4;
  c.family_share = 1;
  CHECK(glide::data::test::error_of([&] { XcGenerator g(c); }) ==
        "synthetic data: family share must be in [0, 1)");
  c.family_share = 0.5;
  c.types = 10;
  CHECK(glide::data::test::error_of([&] { XcGenerator g(c); }) ==
        "synthetic data: item types and label families do not combine");
  CHECK(xc_preset("facets").types == 2000);
  const XcSynthConfig f = xc_preset("families");
  CHECK(f.family_size == 10);
  CHECK(f.labels == XcSynthConfig().labels);
  const XcSynthConfig a = xc_preset("amazon670k");
  CHECK(a.labels == 670091);
  CHECK(a.features == 135909);
}

TEST_CASE("recommendation generator: deterministic, in range, clustered") {
  RecSynthConfig c;
  c.users = 500;
  c.items = 2000;
  c.clusters = 50;
  const RecGenerator gen(c);
  const Dataset a = gen.generate(0, c.users, 0, 1), b = gen.generate(0, c.users, 0, 2);
  CHECK(a == b);
  a.validate();
  CHECK(a.num_points() > 1000);
  CHECK(!(gen.generate(0, 100, 1) == gen.generate(0, 100, 0)));
  // Next items mostly come from the cluster of the latest item.
  std::size_t same = 0, total = 0;
  for (std::size_t i = 0; i < a.num_points(); ++i) {
    const SparseView f = a.features(i);
    if (f.size() == 0) continue;
    const std::size_t latest =
        std::max_element(f.values.begin(), f.values.end()) - f.values.begin();
    for (auto l : a.labels(i)) {
      same += l % c.clusters == f.ids[latest] % c.clusters;
      ++total;
    }
  }
  CHECK(same > 0.5 * total);
}

TEST_CASE("shuffled_order is a seeded permutation") {
  const auto a = shuffled_order(1000, 7), b = shuffled_order(1000, 7), c = shuffled_order(1000, 8);
  CHECK(a == b);
  CHECK(a != c);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) REQUIRE(sorted[i] == i);
  std::size_t fixed = 0;
  for (std::size_t i = 0; i < a.size(); ++i) fixed += a[i] == i;
  CHECK(fixed < 20);
  CHECK(shuffled_order(0, 1).empty());
}

TEST_CASE("stats: counts, quantiles and the Zipf fit") {
  std::vector<std::uint64_t> counts;
  for (int r = 1; r <= 300; ++r)
    counts.push_back(static_cast<std::uint64_t>(1e6 * std::pow(r, -1.2)));
  CHECK(fit_zipf_exponent(counts) == doctest::Approx(1.2).epsilon(0.01));
  Dataset d;
  d.num_features = 4;
  d.num_labels = 3;
  const std::uint32_t f0[] = {0, 1}, l0[] = {0, 1}, l1[] = {0};
  const float v0[] = {1, 2};
  d.add_point(f0, v0, l0);
  d.add_point({}, {}, l1);
  const DatasetStats s = compute_stats(d);
  CHECK(s.points == 2);
  CHECK(s.nonzeros == 2);
  CHECK(s.mean_labels == 1.5);
  CHECK(s.max_nonzeros == 2);
  CHECK(s.points_without_features == 1);
  CHECK(s.labels_never_seen == 1);
  CHECK(s.features_never_seen == 2);
  CHECK(s.label_frequency_quantiles.front().second == 0);
  CHECK(s.label_frequency_quantiles.back().second == 2);
  CHECK(format_stats(s).find("labels              3 (1 never used)") != std::string::npos);
}
