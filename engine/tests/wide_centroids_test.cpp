// The wide layer's starting centroids (engine/wide_centroids.h) against a dense reference of the
// share rounds, the property the shares are for, the choice among rounds, and a shard's slice.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "engine/tests/random_dataset.h"
#include "engine/wide_centroids.h"
#include "engine/wide_layer.h"
#include "tests/error_of.h"

using namespace glide;
using namespace glide::engine;

namespace {

// Points of 2-8 features and 1-4 labels, a few labels frequent (each point's first label is one of
// the first 5 half the time), values in (0, 1].
data::Dataset mixed_points(std::uint32_t points, std::uint32_t features, std::uint32_t labels,
                           std::uint32_t seed) {
  return glide::engine::testing::random_dataset(
      points, features, labels, seed,
      [&](std::mt19937& rng, std::vector<std::uint32_t>& ids, std::vector<float>& vals,
          std::vector<std::uint32_t>& ys) {
        const std::uint32_t nf = 2 + rng() % 7, nl = 1 + rng() % 4;
        glide::engine::testing::draw_distinct(ys, nl, [&]() -> std::uint32_t {
          return ys.empty() && rng() % 2 ? rng() % 5 : rng() % labels;
        });
        // Features near a label's own (3 y .. 3 y + 2) or anywhere.
        glide::engine::testing::draw_distinct(ids, nf, [&]() -> std::uint32_t {
          const std::uint32_t y = ys[rng() % ys.size()];
          return rng() % 3 ? (3 * y + rng() % 3) % features : rng() % features;
        });
        std::sort(ids.begin(), ids.end());
        std::sort(ys.begin(), ys.end());
        for (std::size_t q = 0; q < ids.size(); ++q)
          vals.push_back(0.05f + static_cast<float>(rng() % 96) / 100.0f);
      });
}

using DenseSums = std::vector<std::vector<double>>;  // [label][feature]

// The centroids after `rounds` share rounds, densely in double, over the points not in `held`.
DenseSums reference_sums(const data::Dataset& d, std::uint32_t rounds,
                         const std::vector<bool>& held) {
  const std::uint32_t F = d.num_features, L = d.num_labels;
  const auto used = [&](std::size_t i) { return held.empty() || !held[i]; };
  DenseSums sums(L, std::vector<double>(F, 0.0));
  std::vector<double> background(F, 0.0);
  double total = 0;
  for (std::size_t i = 0; i < d.num_points(); ++i) {
    if (!used(i)) continue;
    const data::SparseView x = d.features(i);
    for (std::size_t q = 0; q < x.size(); ++q) {
      background[x.ids[q]] += x.values[q];
      total += x.values[q];
      for (const std::uint32_t y : d.labels(i)) sums[y][x.ids[q]] += x.values[q];
    }
  }
  for (double& b : background) b /= total;
  for (std::uint32_t r = 0; r < rounds; ++r) {
    DenseSums p = sums;  // each label's distribution over features
    for (auto& row : p) {
      double mass = 0;
      for (const double v : row) mass += v;
      for (double& v : row) v = mass > 0 ? v / mass : 0;
    }
    for (auto& row : sums) std::fill(row.begin(), row.end(), 0.0);
    for (std::size_t i = 0; i < d.num_points(); ++i) {
      if (!used(i)) continue;
      const data::SparseView x = d.features(i);
      const auto y = d.labels(i);
      const double K = static_cast<double>(y.size());
      for (std::size_t q = 0; q < x.size(); ++q) {
        const std::uint32_t f = x.ids[q];
        // Background, then each label's draws, in proportion: b bg(f) + (1 - b) / K sum P_m(f).
        double all = kBackgroundShare * background[f];
        for (const std::uint32_t m : y) all += (1 - kBackgroundShare) / K * p[m][f];
        // Label l's part of the value, scaled by K so that equal shares keep the whole value.
        for (const std::uint32_t l : y)
          sums[l][f] += x.values[q] * K * ((1 - kBackgroundShare) / K * p[l][f]) / all;
      }
    }
  }
  return sums;
}

}  // namespace

TEST_CASE("share rounds give the dense reference's centroids") {
  const data::Dataset d = mixed_points(400, 60, 30, 3);
  std::vector<bool> held(d.num_points(), false);
  for (std::size_t i = 0; i < held.size(); i += 7) held[i] = true;
  for (const std::uint32_t rounds : {0u, 1u, 2u}) {
    for (const bool hold : {false, true}) {
      CAPTURE(rounds);
      CAPTURE(hold);
      const std::vector<bool> h = hold ? held : std::vector<bool>{};
      const WideOptions o{.max_per_label = 1000, .min_weight = 0.0f, .share_rounds = rounds};
      const LabelEntries got = label_sums(d, d.num_features, d.num_labels, o, h);
      const DenseSums want = reference_sums(d, rounds, h);
      REQUIRE(got.size() == d.num_labels);
      for (std::uint32_t l = 0; l < d.num_labels; ++l) {
        std::vector<double> dense(d.num_features, 0.0);
        for (const auto& [f, w] : got[l]) dense[f] = w;
        for (std::uint32_t f = 0; f < d.num_features; ++f) {
          CAPTURE(l);
          CAPTURE(f);
          CHECK(std::abs(dense[f] - want[l][f]) <= 1e-4 * (1 + std::abs(want[l][f])));
        }
      }
    }
  }
}

TEST_CASE("with shares, a rare label keeps the features its frequent co-label does not explain") {
  // Label 0 is on 40 points of features 0-4; label 1 only on one point, beside label 0, which
  // also has features 10 and 11. Without shares label 1's centroid is that whole point.
  data::Dataset d;
  d.num_features = 20;
  d.num_labels = 2;
  const std::vector<std::uint32_t> common = {0, 1, 2, 3, 4};
  for (int i = 0; i < 40; ++i)
    d.add_point(common, std::vector<float>(5, 1.0f), std::vector<std::uint32_t>{0});
  d.add_point(std::vector<std::uint32_t>{0, 1, 2, 3, 4, 10, 11}, std::vector<float>(7, 1.0f),
              std::vector<std::uint32_t>{0, 1});
  const auto weight = [](const LabelEntries& e, std::uint32_t l, std::uint32_t f) {
    for (const auto& [g, w] : e[l])
      if (g == f) return w;
    return 0.0f;
  };
  const WideOptions plain{.max_per_label = 100, .min_weight = 0.0f};
  const LabelEntries before = label_sums(d, 20, 2, plain, {});
  CHECK(weight(before, 1, 0) == doctest::Approx(weight(before, 1, 10)));
  WideOptions shared = plain;
  shared.share_rounds = 1;
  const LabelEntries after = label_sums(d, 20, 2, shared, {});
  shared.share_rounds = 2;
  const LabelEntries twice = label_sums(d, 20, 2, shared, {});
  // Its own features outweigh the explained ones, more so with each round.
  for (const std::uint32_t f : common) {
    CHECK(weight(after, 1, f) * 2 < weight(after, 1, 10));
    CHECK(weight(twice, 1, 10) / weight(twice, 1, f) > weight(after, 1, 10) / weight(after, 1, f));
  }
  CHECK(weight(after, 1, 10) == doctest::Approx(weight(after, 1, 11)));
  // Label 0 keeps its own features; 10 and 11 go to label 1.
  CHECK(weight(after, 0, 10) < weight(after, 1, 10));
  CHECK(weight(after, 0, 0) > 30);
}

TEST_CASE("the start is chosen over share rounds, contrast and powers; fixed ones are kept") {
  const data::Dataset d = mixed_points(1500, 90, 40, 5);
  const WideOptions o{.max_per_label = 8, .min_weight = 0.1f};
  LabelNeighbours found;
  const WideStartChoice all = WideLayer::choose_start(d, 90, 40, o, true, true, true, &found);
  REQUIRE(all.held_out == 150);
  // The contrast candidates' neighbours come back for the final build.
  CHECK(found.count.size() == 40);
  CHECK(found.ids.size() == 40 * kContrastNeighbours);
  constexpr std::size_t R = std::size(kShareRounds), C = std::size(kContrasts),
                        P = std::size(kNormPowers);
  std::size_t wr = 0, wc = 0, wp = 0;
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t p = 0; p < P; ++p)
        if (kShareRounds[r] == all.share_rounds && kContrasts[c] == all.contrast &&
            kNormPowers[p] == all.norm_power)
          wr = r, wc = c, wp = p;
  // Nothing tried beats the winner: higher P@1, then P@5, then fewer rounds, then no contrast,
  // then the larger power.
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t p = 0; p < P; ++p) {
        if (!all.tried[r][c][p]) continue;
        const float p1 = all.p_at_1[r][c][p], w1 = all.p_at_1[wr][wc][wp];
        const float p5 = all.p_at_5[r][c][p], w5 = all.p_at_5[wr][wc][wp];
        const bool earlier = r < wr || (r == wr && (c < wc || (c == wc && p > wp)));
        CHECK_FALSE((p1 > w1 || (p1 == w1 && (p5 > w5 || (p5 == w5 && earlier)))));
      }
  // Every candidate of a round is tried or none; a round is tried when the one before it won
  // over fewer rounds (the rounds stop once one wins nothing). Over several data sets, both
  // happen.
  bool went_on = false, stopped = false;
  for (std::uint32_t seed = 5; seed < 13; ++seed) {
    CAPTURE(seed);
    const data::Dataset ds = mixed_points(1500, 90, 40, seed);
    const WideStartChoice ch = WideLayer::choose_start(ds, 90, 40, o, true, true, true);
    // The best of rounds <= r (the candidate order breaks ties: fewer rounds first).
    const auto best_round = [&](std::size_t last) {
      std::size_t br = 0;
      float b1 = -1, b5 = -1;
      for (std::size_t r = 0; r <= last; ++r)
        for (std::size_t c = 0; c < C; ++c)
          for (std::size_t p = P; p-- > 0;)
            if (ch.p_at_1[r][c][p] > b1 || (ch.p_at_1[r][c][p] == b1 && ch.p_at_5[r][c][p] > b5))
              br = r, b1 = ch.p_at_1[r][c][p], b5 = ch.p_at_5[r][c][p];
      return br;
    };
    for (std::size_t r = 0; r < R; ++r) {
      CAPTURE(r);
      const bool want = r == 0 || (ch.tried[r - 1][0][0] && best_round(r - 1) == r - 1);
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t p = 0; p < P; ++p) CHECK(ch.tried[r][c][p] == want);
      if (r > 0 && ch.tried[r - 1][0][0]) (want ? went_on : stopped) = true;
    }
  }
  CHECK(went_on);
  CHECK(stopped);
  // Rounds fixed at 2, contrast at 1 and power at 0.5: that one alone is tried, and it is what is
  // returned.
  WideOptions fixed = o;
  fixed.share_rounds = 2;
  fixed.contrast = 1;
  fixed.norm_power = 0.5f;
  const WideStartChoice one = WideLayer::choose_start(d, 90, 40, fixed, false, false, false);
  CHECK(one.share_rounds == 2);
  CHECK(one.contrast == 1);
  CHECK(one.norm_power == 0.5f);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t p = 0; p < P; ++p)
        CHECK(one.tried[r][c][p] == (r == 2 && c == 1 && kNormPowers[p] == 0.5f));
  // The same build scored the same points: its figures equal those of the full choice where it
  // tried two rounds (without contrast: with it, the full choice's candidates share the first
  // rounds' neighbours).
  WideOptions plain = fixed;
  plain.contrast = 0;
  LabelNeighbours none;
  const WideStartChoice two = WideLayer::choose_start(d, 90, 40, plain, false, false, false, &none);
  CHECK(none.count.empty());  // no contrast tried, no neighbours searched
  if (all.tried[2][0][2]) {
    CHECK(two.p_at_1[2][0][2] == all.p_at_1[2][0][2]);
    CHECK(two.p_at_5[2][0][2] == all.p_at_5[2][0][2]);
  }
  CHECK(one.p_at_1[2][1][2] > 0);
  // A fixed setting outside the candidates would leave nothing to score: refused.
  fixed.share_rounds = 3;
  CHECK(glide::testing::error_of([&] {
          (void)WideLayer::choose_start(d, 90, 40, fixed, true, false);
        }) == "wide layer: the share rounds to keep must be 0, 1 or 2, got 3");
  fixed.share_rounds = 2;
  fixed.contrast = 0.5f;
  CHECK(glide::testing::contains(glide::testing::error_of([&] {
                                   (void)WideLayer::choose_start(d, 90, 40, fixed, true, true);
                                 }),
                                 "the contrast to keep must be 0 or 1, got 0.5"));
  fixed.contrast = 1;
  fixed.norm_power = 0.3f;
  CHECK(glide::testing::contains(glide::testing::error_of([&] {
                                   (void)WideLayer::choose_start(d, 90, 40, fixed, false, true);
                                 }),
                                 "the norm power to keep must be 0, 0.25, 0.5, 0.75 or 1"));
}

namespace {

// contrast_with_neighbours by its definition, in doubles: the dot products of every two labels'
// kContrastQuery largest unit weights, each label's nearest kContrastNeighbours among those
// whose largest share a feature with its own, their mean unit centroid taken off on its own
// features.
LabelEntries contrast_reference(const LabelEntries& per_label, std::uint32_t num_features,
                                double strength) {
  const std::size_t L = per_label.size();
  std::vector<std::vector<double>> dense(L, std::vector<double>(num_features, 0.0)),
      top(L, std::vector<double>(num_features, 0.0));  // the unit weights, and the largest alone
  std::vector<double> norm(L, 0.0);
  for (std::size_t l = 0; l < L; ++l) {
    for (const auto& [f, w] : per_label[l]) dense[l][f] = w, norm[l] += double(w) * w;
    norm[l] = std::sqrt(norm[l]);
    std::vector<std::pair<std::uint32_t, float>> largest = per_label[l];
    std::sort(largest.begin(), largest.end(), [](const auto& a, const auto& b) {
      return std::abs(a.second) > std::abs(b.second) ||
             (std::abs(a.second) == std::abs(b.second) && a.first < b.first);
    });
    if (largest.size() > kContrastQuery) largest.resize(kContrastQuery);
    for (const auto& [f, w] : largest) top[l][f] = w / norm[l];
  }
  LabelEntries out(L);
  for (std::size_t l = 0; l < L; ++l) {
    out[l] = per_label[l];
    if (per_label[l].empty()) continue;
    std::vector<std::pair<double, std::uint32_t>> ranked;
    for (std::size_t m = 0; m < L; ++m) {
      if (m == l) continue;
      bool shares = false;
      double dot = 0;
      for (std::uint32_t f = 0; f < num_features; ++f)
        if (top[l][f] != 0 && top[m][f] != 0) shares = true, dot += top[l][f] * top[m][f];
      if (shares) ranked.emplace_back(dot, static_cast<std::uint32_t>(m));
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    const std::size_t k = std::min(kContrastNeighbours, ranked.size());
    if (k == 0) continue;
    for (auto& [f, w] : out[l]) {
      double mean = 0;
      for (std::size_t j = 0; j < k; ++j)
        mean += dense[ranked[j].second][f] / norm[ranked[j].second];
      w = static_cast<float>(w - strength * norm[l] * mean / static_cast<double>(k));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("contrast takes each label's nearest labels' mean centroid off its own") {
  // 60 labels in families of 6 that share 4 features; each label has 3 of its own, and some have
  // more than kContrastQuery entries (their largest are the query).
  constexpr std::uint32_t kLabels = 60, kFeatures = 500;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> weight(0.2f, 1.0f);
  LabelEntries per_label(kLabels);
  for (std::uint32_t l = 0; l < kLabels; ++l) {
    if (l == 7) continue;  // a label without entries keeps none
    const std::uint32_t family = l / 6;
    for (std::uint32_t j = 0; j < 4; ++j)
      per_label[l].emplace_back(family * 4 + j, 2 * weight(rng));
    for (std::uint32_t j = 0; j < 3; ++j) per_label[l].emplace_back(40 + l * 3 + j, weight(rng));
    if (l % 10 == 0)  // a long tail of small weights
      for (std::uint32_t j = 0; j < 40; ++j)
        per_label[l].emplace_back(220 + (l / 10) * 40 + j, 0.01f * weight(rng));
  }
  const WideOptions keep_all{.max_per_label = 1000, .min_weight = 0.0f};
  for (const float strength : {0.5f, 1.0f}) {
    CAPTURE(strength);
    LabelEntries got = per_label;
    contrast_with_neighbours(got, kFeatures, strength, keep_all);
    const LabelEntries want = contrast_reference(per_label, kFeatures, strength);
    for (std::uint32_t l = 0; l < kLabels; ++l) {
      CAPTURE(l);
      auto g = got[l], w = want[l];
      std::sort(g.begin(), g.end());
      std::sort(w.begin(), w.end());
      REQUIRE(g.size() == w.size());
      for (std::size_t e = 0; e < g.size(); ++e) {
        CHECK(g[e].first == w[e].first);
        CHECK(g[e].second == doctest::Approx(w[e].second).epsilon(1e-4).scale(1e-3));
      }
    }
  }
  // What it is for: every label's own features weigh more against the family's than before,
  // and on average they now outweigh them, where before the shared ones weighed twice as much.
  LabelEntries contrasted = per_label;
  contrast_with_neighbours(contrasted, kFeatures, 1.0f, keep_all);
  const auto share_of_own = [](const std::vector<std::pair<std::uint32_t, float>>& entries) {
    double own = 0, all = 0;
    for (const auto& [f, w] : entries) {
      all += std::abs(w);
      if (f >= 40 && f < 220) own += std::abs(w);
    }
    return own / all;
  };
  double before = 0, after = 0;
  for (std::uint32_t l = 0; l < kLabels; ++l) {
    if (l == 7) continue;
    CAPTURE(l);
    CHECK(share_of_own(contrasted[l]) > share_of_own(per_label[l]) + 0.05);
    before += share_of_own(per_label[l]) / (kLabels - 1);
    after += share_of_own(contrasted[l]) / (kLabels - 1);
  }
  MESSAGE("own features' share of a label's weight: " << before << " before, " << after
                                                      << " after");
  CHECK(before < 0.35);
  CHECK(after > 0.5);
  // Known neighbours are kept, and the labels without any are searched: a search given the full
  // search's answer for every other label gives the full answer; given other neighbours, the
  // labels with some keep them.
  const LabelNeighbours full = nearest_labels(per_label, kFeatures);
  LabelNeighbours partial = full, other = full;
  for (std::uint32_t l = 0; l < kLabels; l += 3) partial.count[l] = 0;
  for (std::uint32_t l = 0; l < kLabels; ++l)
    other.ids[l * kContrastNeighbours] = (l + 30) % kLabels;
  const LabelNeighbours refound = nearest_labels(per_label, kFeatures, &partial),
                        kept = nearest_labels(per_label, kFeatures, &other);
  CHECK(refound.count == full.count);
  CHECK(refound.ids == full.ids);
  CHECK(kept.ids == other.ids);
  LabelEntries given = per_label;
  contrast_with_neighbours(given, kFeatures, 1.0f, keep_all, &partial);
  CHECK(given == contrasted);
  CHECK(glide::testing::contains(glide::testing::error_of([&] {
                                   LabelNeighbours wrong = full;
                                   wrong.count.pop_back();
                                   (void)nearest_labels(per_label, kFeatures, &wrong);
                                 }),
                                 "known neighbours for 59 labels, the layer has 60"));
  // Pruning then applies as to the sums: with max_per_label 3, three entries a label.
  LabelEntries pruned = per_label;
  contrast_with_neighbours(pruned, kFeatures, 1.0f, {.max_per_label = 3, .min_weight = 0.0f});
  CHECK(pruned[1].size() == 3);
  CHECK(pruned[7].empty());
}

TEST_CASE("share rounds over too many sums or negative values are skipped or refused") {
  data::Dataset d = mixed_points(1500, 60, 30, 4);
  const std::uint64_t entries = share_entries(d);
  std::uint64_t want = 0;
  for (std::size_t i = 0; i < d.num_points(); ++i)
    want += d.features(i).size() * d.labels(i).size();
  CHECK(entries == want);
  const auto only_no_rounds_tried = [](const WideStartChoice& c) {
    CHECK(c.share_rounds == 0);
    for (std::size_t p = 0; p < std::size(kNormPowers); ++p) {
      CHECK(c.tried[0][0][p]);
      CHECK_FALSE(c.tried[1][0][p]);
      CHECK_FALSE(c.tried[2][0][p]);
    }
  };
  WideOptions o{.max_per_label = 8, .min_weight = 0.1f};
  o.max_share_entries = entries - 1;
  const std::string too_many = "they would hold " + std::to_string(entries) +
                               " (label, feature) sums, over the limit of " +
                               std::to_string(entries - 1);
  const WideStartChoice c = WideLayer::choose_start(d, 60, 30, o, true, true);
  CHECK(c.rounds_not_tried == too_many);
  only_no_rounds_tried(c);
  o.share_rounds = 1;
  CHECK(glide::testing::error_of([&] { (void)WideLayer::from_centroids(d, 60, 30, o); }) ==
        "wide layer: share rounds cannot run: " + too_many +
            "; set network.wide_share_rounds (--wide-share-rounds) to 0");
  // At the limit they run.
  o.max_share_entries = entries;
  CHECK(WideLayer::choose_start(d, 60, 30, o, true, true).rounds_not_tried.empty());
  CHECK_FALSE(WideLayer::from_centroids(d, 60, 30, o).empty());
  // A negative value: the shares read values as amounts of each feature.
  d.values[d.row_offsets[7] + 1] = -0.5f;
  const WideStartChoice n = WideLayer::choose_start(d, 60, 30, o, true, true);
  CHECK(glide::testing::contains(n.rounds_not_tried, "point 7 has value -0.500000 at feature"));
  only_no_rounds_tried(n);
  CHECK(glide::testing::contains(
      glide::testing::error_of([&] { (void)WideLayer::from_centroids(d, 60, 30, o); }),
      "(they need values >= 0); set network.wide_share_rounds (--wide-share-rounds) to 0"));
}

TEST_CASE("a label slice scores its labels as the whole layer does") {
  const data::Dataset d = mixed_points(600, 60, 30, 9);
  const WideLayer whole = WideLayer::from_centroids(
      d, 60, 30, {.max_per_label = 12, .min_weight = 0.05f, .share_rounds = 1});
  const WideLayer slice = whole.label_slice(10, 22);
  CHECK(slice.num_labels() == 12);
  CHECK(slice.num_features() == 60);
  CHECK(slice.entries() < whole.entries());
  WideScores a, b;
  for (std::size_t i = 0; i < 100; ++i) {
    whole.score(d.features(i), a);
    slice.score(d.features(i), b);
    for (std::uint32_t l = 0; l < 30; ++l) {
      CAPTURE(l);
      if (l < 10 || l >= 22) continue;
      CHECK(b.reached(l - 10) == a.reached(l));
      CHECK(b[l - 10] == a[l]);
    }
  }
  CHECK(glide::testing::contains(glide::testing::error_of([&] { (void)whole.label_slice(5, 31); }),
                                 "label range [5, 31) is outside its 30 labels"));
}
