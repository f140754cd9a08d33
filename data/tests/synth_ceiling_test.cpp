#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "data/synth_ceiling.h"

using namespace glide::data;

namespace {

// The k best labels by brute force: every label's score from its own profile, reached ones only.
std::vector<std::uint32_t> brute_top(const PlantedScorer& s, const SparseView& x,
                                     std::uint32_t labels, std::size_t k,
                                     const std::vector<std::uint8_t>& allowed) {
  std::vector<std::pair<double, std::uint32_t>> all;
  for (std::uint32_t l = 0; l < labels; ++l) {
    if (!allowed.empty() && !allowed[l]) continue;
    const double v = s.score(x, l);
    if (v > 0) all.emplace_back(-v, l);
  }
  std::sort(all.begin(), all.end());
  std::vector<std::uint32_t> out;
  for (std::size_t j = 0; j < all.size() && j < k; ++j) out.push_back(all[j].second);
  return out;
}

}  // namespace

TEST_CASE("planted scorer: its inverted index ranks as brute force over every profile") {
  const XcSynthConfig c = xc_preset("tiny");
  const XcGenerator gen(c);
  const PlantedScorer scorer(gen, 2);
  const Dataset test = gen.test(60, 1);
  std::vector<std::uint8_t> odd(c.labels);
  for (std::uint32_t l = 0; l < c.labels; ++l) odd[l] = l % 2;
  for (std::size_t i = 0; i < test.num_points(); ++i) {
    const SparseView x = test.features(i);
    const auto top = scorer.top(x, 5);
    REQUIRE(top.size() == 5);
    CHECK(top == brute_top(scorer, x, c.labels, 5, {}));
    const auto masked = scorer.top(x, 5, odd);
    CHECK(masked == brute_top(scorer, x, c.labels, 5, odd));
    for (std::uint32_t l : masked) CHECK(l % 2 == 1);
  }
}

TEST_CASE("planted ceiling: one label a point, separate profiles, is found every time") {
  XcSynthConfig c = xc_preset("tiny");
  c.mean_labels = 1;
  c.max_labels = 1;
  c.noise = 0.05;
  const XcGenerator gen(c);
  // Few training points, so that some test labels have none.
  const Dataset train = gen.generate(0, 150, kTrainStream, 2), test = gen.test(500, 2);
  const PlantedCeiling p = planted_ceiling(gen, train, test, 2);
  CHECK(p.p_at_1_all >= 0.98);
  // One label a point: P@5 is at most 1/5.
  CHECK(p.p_at_5_all <= 0.2 + 1e-9);
  CHECK(p.p_at_5_all >= 0.19);
  std::set<std::uint32_t> seen(train.label_ids.begin(), train.label_ids.end());
  CHECK(p.seen_labels == seen.size());
  // Labels without training points cannot be found among the seen ones: the test points whose
  // label is unseen bound P@1 over seen labels.
  std::size_t unseen = 0;
  for (std::size_t i = 0; i < test.num_points(); ++i) unseen += !seen.count(test.labels(i)[0]);
  REQUIRE(unseen > 0);
  // With separate profiles the seen ones are all found: the bound is reached.
  const double bound = 1.0 - double(unseen) / test.num_points();
  CHECK(p.p_at_1_seen <= bound + 1e-9);
  CHECK(p.p_at_1_seen >= bound - 0.02);
}

TEST_CASE("planted ceiling: labels never seen in training are out of reach") {
  XcSynthConfig c = xc_preset("tiny");
  c.mean_labels = 1;
  c.max_labels = 1;
  const XcGenerator gen(c);
  const Dataset test = gen.test(300, 2);
  Dataset none = gen.generate(0, 0);
  const PlantedCeiling p = planted_ceiling(gen, none, test, 2);
  CHECK(p.seen_labels == 0);
  CHECK(p.p_at_1_seen == 0);
  CHECK(p.p_at_5_seen == 0);
  CHECK(p.p_at_1_all > 0.9);
}
