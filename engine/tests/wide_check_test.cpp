// check_wide (engine/wide_check.h) against references: on data made for each side, the choice
// is the one whose explicit run scores higher on test points, and the run that follows the check
// trains exactly what that explicit run trains.
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <vector>

#include "common/error.h"
#include "data/synth_xc.h"
#include "engine/evaluator.h"
#include "engine/fit.h"
#include "engine/output_sampler.h"
#include "engine/tests/small_problem.h"
#include "engine/wide_check.h"

using namespace glide;
using namespace glide::engine;

namespace {

// 6,000 training points over 500 labels. types = 0: each label draws its own features, where the
// wide start is most of the model; types > 0: points of item types whose labels are facets the
// types share, where the network alone ends higher (docs/training.md).
data::TrainTest shaped(std::uint32_t types, std::uint64_t points = 6000) {
  data::XcSynthConfig c;
  c.points = points;
  c.features = 5000;
  c.labels = 500;
  c.mean_features = 25;
  c.types = types;
  return data::synth_xc_split(c, 500, 1);
}

Config defaults_for(const data::Dataset& train) {
  Config c;  // the defaults otherwise: wide auto, 5 epochs
  c.net.num_features = train.num_features;
  c.net.num_labels = train.num_labels;
  return c;
}

std::unique_ptr<Network> trained(const Config& c, const data::Dataset& train,
                                 const LabelNeighbours* neighbours = nullptr) {
  auto net = std::make_unique<Network>(c.net);
  Trainer trainer(*net, c.train, make_training_sampler(c, *net, false));
  FitOptions fo;
  fo.wide_neighbours = neighbours;
  fit(*net, trainer, train, c.train, fo);
  return net;
}

double p1_plus_p5(const Network& net, const data::Dataset& test) {
  const EvalResult r = evaluate(net, test, EvalMode::kExact, nullptr);
  return r.precision[0] + r.precision[4];
}

}  // namespace

TEST_CASE("check_wide keeps the wide layer where it scores higher and drops it where not") {
  // One thread: the runs compared below are then bit for bit reproducible.
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  for (const std::uint32_t types : {0u, 100u}) {
    CAPTURE(types);
    const data::TrainTest d = shaped(types);
    Config c = defaults_for(d.train);
    LabelNeighbours neighbours;
    const WideCheck w = check_wide(c, d.train, &neighbours, nullptr);
    CHECK(w.start.held_out == 600);
    CHECK(w.keep == (types == 0));
    // Where the network alone wins, it trains with the rare labels' path.
    CHECK(c.net.wide == (w.keep ? WideMode::kOn : WideMode::kTail));
    // The start it scored is the one the run builds.
    CHECK(c.net.wide_norm_power == w.start.norm_power);
    CHECK(c.net.wide_share_rounds == w.start.share_rounds);
    CHECK(c.net.wide_contrast == w.start.contrast);
    if (w.keep) {
      CHECK(w.outcome != WideCheck::Outcome::kAloneAhead);
    } else {
      CHECK(w.outcome == WideCheck::Outcome::kAloneAhead);
      CHECK(w.alone_p1 + w.alone_p5 > w.wide_p1 + w.wide_p5);
    }

    // The references: each choice made explicitly, its start chosen by the run itself.
    Config with = defaults_for(d.train), without = with;
    with.net.wide = WideMode::kOn;
    without.net.wide = WideMode::kTail;
    const auto net_with = trained(with, d.train), net_without = trained(without, d.train);
    const double score_with = p1_plus_p5(*net_with, d.test),
                 score_without = p1_plus_p5(*net_without, d.test);
    MESSAGE("types " << types << ": test P@1 + P@5 with the wide layer " << score_with
                     << ", without " << score_without);
    CHECK((w.keep ? score_with > score_without : score_without > score_with));
    // The run after the check trains the explicit choice's model exactly.
    const auto after_check = trained(c, d.train, &neighbours);
    CHECK(
        testing::same_predictions(testing::exact_top5(*after_check, d.test),
                                  testing::exact_top5(w.keep ? *net_with : *net_without, d.test)));
  }
}

TEST_CASE("check_wide leaves a set choice alone and keeps the wide layer on too few points") {
  const data::TrainTest d = shaped(0, 900);
  for (const WideMode set : {WideMode::kOn, WideMode::kOff}) {
    Config c = defaults_for(d.train);
    c.net.wide = set;
    const Config before = c;
    const WideCheck w = check_wide(c, d.train, nullptr);
    CHECK(c == before);
    CHECK(w.keep == (set == WideMode::kOn));
  }
  // 900 points: 90 would be held out, under the 100 a choice needs.
  Config c = defaults_for(d.train);
  const WideCheck w = check_wide(c, d.train, nullptr);
  CHECK(w.outcome == WideCheck::Outcome::kTooFewPoints);
  CHECK(w.keep);
  CHECK(c.net.wide == WideMode::kOn);
  CHECK(describe(w).find("too few training points") != std::string::npos);
  // Data the model cannot hold is refused as a run refuses it, before any work.
  Config narrow = defaults_for(d.train);
  narrow.net.num_labels = d.train.num_labels - 1;
  CHECK_THROWS_WITH_AS(check_wide(narrow, d.train, nullptr),
                       doctest::Contains("training set dimensions"), Error);
}

TEST_CASE("the rare labels' path holds the rare labels' centroid features at zero, and trains") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  const data::TrainTest d = shaped(100);
  Config c = defaults_for(d.train);
  c.net.wide = WideMode::kTail;
  // The median count of the labels that have points: half of them are "rare" here.
  std::vector<std::uint32_t> counts = d.train.label_counts(), seen;
  counts.resize(c.net.num_labels, 0);
  for (const std::uint32_t n : counts)
    if (n > 0) seen.push_back(n);
  std::nth_element(seen.begin(), seen.begin() + seen.size() / 2, seen.end());
  c.net.wide_tail_points = seen[seen.size() / 2];
  CAPTURE(c.net.wide_tail_points);

  // The reference: the plain centroid layer (no rounds, no contrast); its entries of the labels
  // of at most wide_tail_points points are the path's, every other label has none.
  Config plain = c;
  plain.net.wide = WideMode::kOn;
  plain.net.wide_norm_power = 1;
  plain.net.wide_share_rounds = 0;
  plain.net.wide_contrast = 0;
  const auto entries_of = [&](const WideLayer& w) {
    std::set<std::pair<std::uint32_t, std::uint32_t>> out;  // (label, feature)
    for (std::uint32_t f = 0; f < w.num_features(); ++f)
      for (std::uint64_t e = w.offsets()[f]; e < w.offsets()[f + 1]; ++e)
        out.emplace(w.labels()[e], f);
    return out;
  };
  const WideLayer path = WideLayer::from_centroids(d.train, c.net.num_features, c.net.num_labels,
                                                   wide_options(c.net)),
                  whole = WideLayer::from_centroids(d.train, c.net.num_features, c.net.num_labels,
                                                    wide_options(plain.net));
  std::set<std::pair<std::uint32_t, std::uint32_t>> expected;
  std::set<std::uint32_t> expected_labels;
  for (const auto& [l, f] : entries_of(whole))
    if (counts[l] <= c.net.wide_tail_points) {
      expected.emplace(l, f);
      expected_labels.insert(l);
    }
  CHECK(entries_of(path) == expected);
  CHECK(expected_labels.size() >= seen.size() / 2);
  CHECK(expected_labels.size() < seen.size());
  CHECK(
      std::all_of(path.weights().begin(), path.weights().end(), [](float v) { return v == 0.0f; }));

  // A run builds the same path and trains it.
  const auto net = trained(c, d.train);
  REQUIRE_FALSE(net->wide.empty());
  CHECK(entries_of(net->wide) == expected);
  const auto& trained_weights = net->wide.weights();
  CHECK(std::count_if(trained_weights.begin(), trained_weights.end(),
                      [](float v) { return v != 0.0f; }) > 0);
}
