// The wide layer (engine/wide_layer.h) against dense references: its centroids, its scores, one
// training step, the predictors' use of it, the model-file round trip and damaged arrays.
#include <doctest/doctest.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "common/error.h"
#include "engine/checkpoint.h"
#include "engine/predictor.h"
#include "engine/tests/random_dataset.h"
#include "engine/tests/small_problem.h"
#include "engine/wide_layer.h"
#include "tests/error_of.h"

using namespace glide;
using namespace glide::engine;
using glide::testing::contains;
using glide::testing::error_of;

namespace {

// A random dataset: `points` points of up to 6 features (some repeated across points) and up to
// 3 labels each.
data::Dataset random_points(std::uint32_t points, std::uint32_t features, std::uint32_t labels,
                            std::uint32_t seed) {
  return glide::engine::testing::random_dataset(
      points, features, labels, seed,
      [&](std::mt19937& rng, std::vector<std::uint32_t>& ids, std::vector<float>& vals,
          std::vector<std::uint32_t>& ys) {
        const std::uint32_t nf = 1 + rng() % 6, nl = 1 + rng() % 3;
        glide::engine::testing::draw_distinct(ids, nf, [&] { return rng() % features; });
        std::sort(ids.begin(), ids.end());
        for (std::size_t q = 0; q < ids.size(); ++q)
          vals.push_back(0.1f + static_cast<float>(rng() % 100) / 100.0f);
        glide::engine::testing::draw_distinct(ys, nl, [&] { return rng() % labels; });
        std::sort(ys.begin(), ys.end());
      });
}

using Dense = std::map<std::pair<std::uint32_t, std::uint32_t>, float>;  // (feature, label)

Dense entries_of(const WideLayer& w) {
  Dense out;
  for (std::uint32_t f = 0; f < w.num_features(); ++f)
    for (std::uint64_t e = w.offsets()[f]; e < w.offsets()[f + 1]; ++e)
      out[{f, w.labels()[e]}] = w.weights()[e];
  return out;
}

// Adagrad's sums by (feature, label), read as a checkpoint does.
Dense sums_of(const WideLayer& w) {
  Dense out;
  for (std::uint32_t f = 0; f < w.num_features(); ++f)
    for (std::uint64_t e = w.offsets()[f]; e < w.offsets()[f + 1]; ++e)
      out[{f, w.labels()[e]}] = w.optimizer_sums()[e];
  return out;
}

// Each label's unscaled centroid by definition, over the points not in `held`: the sum of its
// points' inputs, the weights of at least min_weight x the largest, the largest max_per_label of
// those.
std::vector<std::map<std::uint32_t, double>> reference_sums(const data::Dataset& d,
                                                            const WideOptions& o,
                                                            const std::vector<bool>& held = {}) {
  std::vector<std::map<std::uint32_t, double>> out(d.num_labels);
  for (std::uint32_t l = 0; l < d.num_labels; ++l) {
    std::map<std::uint32_t, double> sum;
    for (std::size_t i = 0; i < d.num_points(); ++i) {
      const auto ys = d.labels(i);
      if ((!held.empty() && held[i]) || std::find(ys.begin(), ys.end(), l) == ys.end()) continue;
      const auto x = d.features(i);
      for (std::size_t q = 0; q < x.size(); ++q) sum[x.ids[q]] += x.values[q];
    }
    double largest = 0;
    for (const auto& [f, v] : sum) largest = std::max(largest, std::abs(v));
    std::vector<std::pair<double, std::uint32_t>> kept;
    for (const auto& [f, v] : sum)
      if (std::abs(v) >= o.min_weight * largest) kept.emplace_back(v, f);
    // Ties keep the lower feature (kept is in feature order).
    std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
      return std::abs(a.first) > std::abs(b.first);
    });
    if (kept.size() > o.max_per_label) kept.resize(o.max_per_label);
    for (const auto& [v, f] : kept) out[l][f] = v;
  }
  return out;
}

// Each label's factor from its sum to its start: norm init_scale x (norm / median norm)^(1 - p).
std::vector<double> reference_scales(const std::vector<std::map<std::uint32_t, double>>& sums,
                                     double power, double init_scale) {
  std::vector<double> norms, nonzero;
  for (const auto& s : sums) {
    double n = 0;
    for (const auto& [f, v] : s) n += v * v;
    norms.push_back(std::sqrt(n));
    if (n > 0) nonzero.push_back(norms.back());
  }
  std::sort(nonzero.begin(), nonzero.end());
  const double median = nonzero[nonzero.size() / 2];
  std::vector<double> out;
  for (const double n : norms)
    out.push_back(n > 0 ? init_scale * std::pow(n / median, 1 - power) / n : 0.0);
  return out;
}

Dense reference_centroids(const data::Dataset& d, const WideOptions& o) {
  const auto sums = reference_sums(d, o);
  const auto scales = reference_scales(sums, o.norm_power, o.init_scale);
  Dense out;
  for (std::uint32_t l = 0; l < d.num_labels; ++l)
    for (const auto& [f, v] : sums[l]) out[{f, l}] = static_cast<float>(v * scales[l]);
  return out;
}

void check_close(const Dense& got, const Dense& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [key, v] : want) {
    const auto it = got.find(key);
    REQUIRE(it != got.end());
    CHECK(it->second == doctest::Approx(v).epsilon(1e-5));
  }
}

}  // namespace

TEST_CASE("the wide layer starts at each label's centroid, pruned and scaled by its norm power") {
  const data::Dataset d = random_points(300, 40, 25, 1);
  for (const WideOptions o :
       {WideOptions{.max_per_label = 256, .min_weight = 0, .init_scale = 1},
        WideOptions{.max_per_label = 5, .min_weight = 0.3f, .init_scale = 30},
        WideOptions{.max_per_label = 5, .min_weight = 0.3f, .norm_power = 0, .init_scale = 30},
        WideOptions{.max_per_label = 8, .min_weight = 0.1f, .norm_power = 0.75f}}) {
    const WideLayer w = WideLayer::from_centroids(d, 40, 30, o);
    check_close(entries_of(w), reference_centroids(d, o));
    for (std::uint32_t f = 0; f < 40; ++f)  // labels ascend within a feature
      for (std::uint64_t e = w.offsets()[f] + 1; e < w.offsets()[f + 1]; ++e)
        CHECK(w.labels()[e - 1] < w.labels()[e]);
  }
}

namespace {

// Held-out P@1 and P@5 of each norm power by brute force: every label scored densely from the
// sums of the points not held out (the held-out ones: the last of each `stride`).
struct ReferenceChoice {
  std::vector<double> p_at_1, p_at_5;
};
ReferenceChoice reference_choice(const data::Dataset& d, const WideOptions& o,
                                 std::size_t held_count) {
  const std::size_t stride = d.num_points() / held_count;
  std::vector<bool> held(d.num_points(), false);
  for (std::size_t k = 0; k < held_count; ++k) held[k * stride + stride - 1] = true;
  const auto sums = reference_sums(d, o, held);
  ReferenceChoice out;
  for (const float power : kNormPowers) {
    const auto scales = reference_scales(sums, power, 1.0);
    double hits1 = 0, hits5 = 0;
    for (std::size_t i = 0; i < d.num_points(); ++i) {
      if (!held[i]) continue;
      const auto x = d.features(i);
      std::vector<std::pair<double, std::uint32_t>> ranked;  // reached labels only
      for (std::uint32_t l = 0; l < d.num_labels; ++l) {
        double score = 0;
        bool reached = false;
        for (std::size_t q = 0; q < x.size(); ++q)
          if (const auto it = sums[l].find(x.ids[q]); it != sums[l].end())
            score += x.values[q] * it->second, reached = true;
        if (reached) ranked.emplace_back(score * scales[l], l);
      }
      std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      });
      const auto ys = d.labels(i);
      for (std::size_t r = 0; r < std::min<std::size_t>(5, ranked.size()); ++r)
        if (std::find(ys.begin(), ys.end(), ranked[r].second) != ys.end()) {
          hits5 += 1;
          if (r == 0) hits1 += 1;
        }
    }
    out.p_at_1.push_back(hits1 / double(held_count));
    out.p_at_5.push_back(hits5 / double(5 * held_count));
  }
  return out;
}

// Points of 3 features each; labels drawn by `label_of(i, rng)`, features by `features_of(label,
// rng)`, all values 1.
template <class LabelOf, class FeaturesOf>
data::Dataset generated(std::uint32_t points, std::uint32_t features, std::uint32_t labels,
                        LabelOf label_of, FeaturesOf features_of) {
  std::mt19937 rng(7);
  data::Dataset d;
  d.num_features = features;
  d.num_labels = labels;
  for (std::uint32_t i = 0; i < points; ++i) {
    const std::uint32_t y = label_of(rng);
    std::vector<std::uint32_t> ids;
    while (ids.size() < 3) {
      const std::uint32_t f = features_of(y, rng);
      if (std::find(ids.begin(), ids.end(), f) == ids.end()) ids.push_back(f);
    }
    std::sort(ids.begin(), ids.end());
    d.add_point(ids, std::vector<float>(ids.size(), 1.0f), std::vector<std::uint32_t>{y});
  }
  return d;
}

}  // namespace

TEST_CASE("the norm power is chosen by held-out precision, as a dense reference computes it") {
  const data::Dataset d = random_points(1500, 60, 40, 11);
  const WideOptions o{.max_per_label = 6, .min_weight = 0.2f};
  const WideStartChoice c = WideLayer::choose_start(d, 60, 40, o, true, false);
  REQUIRE(c.held_out == 150);  // a tenth of the points
  const ReferenceChoice want = reference_choice(d, o, 150);
  for (std::size_t p = 0; p < std::size(kNormPowers); ++p) {
    CAPTURE(kNormPowers[p]);
    // Float against double sums may order a near tie differently: a point either way.
    CHECK(std::abs(c.p_at_1[0][0][p] - want.p_at_1[p]) <= 1.0 / 150 + 1e-6);
    CHECK(std::abs(c.p_at_5[0][0][p] - want.p_at_5[p]) <= 1.0 / 150 + 1e-6);
  }
  // The winner: the highest P@1, then P@5, then the larger power.
  for (std::size_t p = 0; p < std::size(kNormPowers); ++p) {
    const std::size_t chosen = static_cast<std::size_t>(
        std::find(std::begin(kNormPowers), std::end(kNormPowers), c.norm_power) -
        std::begin(kNormPowers));
    REQUIRE(chosen < std::size(kNormPowers));
    const bool beats = c.p_at_1[0][0][p] > c.p_at_1[0][0][chosen] ||
                       (c.p_at_1[0][0][p] == c.p_at_1[0][0][chosen] &&
                        (c.p_at_5[0][0][p] > c.p_at_5[0][0][chosen] ||
                         (c.p_at_5[0][0][p] == c.p_at_5[0][0][chosen] && p > chosen)));
    CHECK_FALSE(beats);
  }
}

TEST_CASE("labels known by their frequency choose a small norm power, by their features 1") {
  // Features say nothing about the label; one label is most of the data: the plain sums, which
  // keep each label's frequency, predict it every time.
  const data::Dataset shared = generated(
      1500, 30, 10, [](std::mt19937& r) { return r() % 10 < 7 ? 0u : 1 + r() % 9; },
      [](std::uint32_t, std::mt19937& r) { return static_cast<std::uint32_t>(r() % 30); });
  const WideStartChoice a = WideLayer::choose_start(shared, 30, 10, {}, true, false);
  CHECK(a.norm_power < 1);
  CHECK(a.p_at_1[0][0][0] > a.p_at_1[0][0][4] + 0.2f);
  // Each label has features of its own (and one of 5 common ones); the same skew: the plain
  // sums let the frequent label's common features outscore a rare label's own.
  const data::Dataset own = generated(
      1500, 65, 20, [](std::mt19937& r) { return r() % 2 == 0 ? 0u : 1 + r() % 19; },
      [](std::uint32_t y, std::mt19937& r) {
        return r() % 3 == 0 ? 60 + static_cast<std::uint32_t>(r() % 5) : 3 * y + r() % 3;
      });
  const WideStartChoice b = WideLayer::choose_start(own, 65, 20, {}, true, false);
  CHECK(b.norm_power == 1);
  CHECK(b.p_at_1[0][0][4] > b.p_at_1[0][0][0]);
}

TEST_CASE(
    "too few points to hold out keep the norm power at 1; a power outside [0, 1] is refused") {
  const data::Dataset d = random_points(999, 20, 10, 5);
  const WideStartChoice c = WideLayer::choose_start(d, 20, 10, {}, true, false);
  CHECK(c.held_out == 0);
  CHECK(c.norm_power == 1);
  CHECK(contains(error_of([&] { WideLayer::from_centroids(d, 20, 10, {.norm_power = -1}); }),
                 "norm power must be in [0, 1]"));
}

namespace {

// A training batch's scored pairs: labels 0, 3, 6, ... shared by every sample, and a few own
// labels per sample, one of them twice (a repeated own neuron gets a slot per occurrence).
ActivePairs batch_pairs(std::uint32_t batch, std::uint32_t labels,
                        std::vector<std::vector<std::uint32_t>>& own) {
  std::vector<std::uint32_t> shared;
  for (std::uint32_t l = 0; l < labels; l += 3) shared.push_back(l);
  own.assign(batch, {});
  for (std::uint32_t s = 0; s < batch; ++s) {
    for (std::uint32_t l = 1 + s % 2; l < labels; l += 3 * (1 + s % 3)) own[s].push_back(l);
    own[s].push_back(own[s].back());
  }
  std::vector<std::span<const std::uint32_t>> views(own.begin(), own.end());
  ActivePairs pairs;
  pairs.build(views, shared, labels, batch);
  return pairs;
}

// The (sample, label) of every slot of `pairs`.
std::vector<std::pair<std::uint32_t, std::uint32_t>> slot_owners(const ActivePairs& pairs) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> out(pairs.num_pairs());
  for (std::size_t i = 0; i < pairs.neurons().size(); ++i)
    for (std::uint64_t q = pairs.neuron_begin(i); q < pairs.neuron_begin(i + 1); ++q)
      out[q] = {pairs.rows()[q], pairs.neurons()[i]};
  return out;
}

// A training batch of 8 of `d`'s points over 12 labels, each slot's loss gradient
// scale * (sample - label), and each entry's gradient by brute force: sum over the slots of
// coef * x_f.
struct StepBatch {
  std::vector<data::SparseView> inputs;
  std::vector<std::vector<std::uint32_t>> own;
  ActivePairs pairs;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> owners;
  std::vector<float> coef;
  Dense grad;
  StepBatch(const data::Dataset& d, float scale) {
    for (std::uint32_t s = 0; s < 8; ++s) inputs.push_back(d.features(s));
    pairs = batch_pairs(8, 12, own);
    owners = slot_owners(pairs);
    coef.resize(pairs.num_pairs());
    for (std::size_t k = 0; k < coef.size(); ++k) {
      const auto [s, l] = owners[k];
      coef[k] = scale * static_cast<float>(int(s) - int(l));
      for (std::size_t q = 0; q < inputs[s].size(); ++q)
        grad[{inputs[s].ids[q], l}] += coef[k] * inputs[s].values[q];
    }
  }
};

}  // namespace

TEST_CASE("wide scores are the dense product V x, in prediction and added to a batch's logits") {
  const data::Dataset d = random_points(200, 30, 20, 2);
  WideLayer w = WideLayer::from_centroids(d, 30, 20, {.max_per_label = 4});
  const Dense v = entries_of(w);
  const auto dense_score = [&](const data::SparseView& x, std::uint32_t l, bool* reached) {
    double want = 0;
    for (std::size_t k = 0; k < x.size(); ++k)
      if (const auto it = v.find({x.ids[k], l}); it != v.end())
        want += double(x.values[k]) * it->second, *reached = true;
    return want;
  };
  WideScores s;
  const data::Dataset q = random_points(50, 30, 20, 3);
  for (std::size_t i = 0; i < 40; ++i) {
    w.score(q.features(i), s);
    for (std::uint32_t l = 0; l < 20; ++l) {
      bool reached = false;
      const double want = dense_score(q.features(i), l, &reached);
      CHECK(s.reached(l) == reached);
      CHECK(s[l] == doctest::Approx(want).epsilon(1e-5));
    }
  }
  // Over labels in several 64-label words, the last one partial: the walk in label order lists
  // exactly the labels an input reached, each once, and none of the previous input's.
  {
    constexpr std::uint32_t kLabels = 150;
    const data::Dataset many = random_points(600, 30, kLabels, 4);
    const WideLayer wm = WideLayer::from_centroids(many, 30, kLabels, {.max_per_label = 8});
    std::uint32_t highest = 0;
    for (std::size_t i = 0; i < 40; ++i) {
      wm.score(many.features(i), s);
      std::vector<std::uint32_t> in_order, want;
      s.for_each_in_order([&](std::uint32_t l) { in_order.push_back(l); });
      for (std::uint32_t l = 0; l < kLabels; ++l)
        if (s.reached(l)) want.push_back(l);
      std::vector<std::uint32_t> first_reached(s.labels().begin(), s.labels().end());
      std::sort(first_reached.begin(), first_reached.end());
      CHECK(in_order == want);
      CHECK(in_order == first_reached);
      if (!in_order.empty()) highest = std::max(highest, in_order.back());
    }
    CHECK(highest >= 128);  // the partial last word is walked too
  }
  // Block by block (exact inference): from any block seeked, blocks of 16 and of 37 labels (the
  // last one partial) add to each row exactly the bits score() gives, and nothing to labels the
  // input does not reach; an input with features beyond the layer's gets nothing from them.
  {
    constexpr std::uint32_t kLabels = 150;
    const data::Dataset many = random_points(600, 30, kLabels, 5);
    const WideLayer wm = WideLayer::from_centroids(many, 30, kLabels, {.max_per_label = 8});
    for (const std::uint32_t block : {16u, 37u}) {
      for (std::uint32_t first = 0; first * block < kLabels; first += 2) {
        CAPTURE(block);
        CAPTURE(first);
        for (std::size_t i = 0; i < 30; ++i) {
          data::SparseView x = many.features(i);
          std::vector<std::uint32_t> ids(x.ids.begin(), x.ids.end());
          std::vector<float> values(x.values.begin(), x.values.end());
          if (i % 5 == 0) ids.push_back(31), values.push_back(2.0f);  // beyond the layer
          x = {ids, values};
          wm.score(x, s);
          std::vector<std::uint64_t> cursors(x.size());
          std::vector<float> sum(block);
          wm.seek(x, first * block, cursors.data());
          for (std::uint32_t j0 = first * block; j0 < kLabels; j0 += block) {
            const std::uint32_t n = std::min(block, kLabels - j0);
            std::vector<float> row(n, 0.25f);
            bool any = false;
            for (std::uint32_t l = j0; l < j0 + n; ++l) any = any || s.reached(l);
            CHECK(wm.add_block(x, j0, n, cursors.data(), row.data(), sum.data()) == any);
            for (std::uint32_t l = j0; l < j0 + n; ++l)
              CHECK(row[l - j0] == (s.reached(l) ? 0.25f + s[l] : 0.25f));
          }
        }
      }
    }
  }
  // A training batch: each slot's logit gains its (sample, label)'s score; two batches in a row
  // reuse the scratch.
  w.prepare_training();
  WideBatch batch;
  for (const std::size_t first : {0, 10}) {
    std::vector<data::SparseView> inputs;
    for (std::size_t i = first; i < first + 40; ++i) inputs.push_back(q.features(i));
    std::vector<std::vector<std::uint32_t>> own;
    const ActivePairs pairs = batch_pairs(40, 20, own);
    std::vector<float> z(pairs.num_pairs());
    for (std::size_t k = 0; k < z.size(); ++k) z[k] = 0.01f * static_cast<float>(k % 7);
    const std::vector<float> before = z;
    batch.build(inputs, w.num_features());
    w.add_scores(batch, pairs, z.data());
    const auto owners = slot_owners(pairs);
    for (std::size_t k = 0; k < z.size(); ++k) {
      bool reached = false;
      const double want = dense_score(inputs[owners[k].first], owners[k].second, &reached);
      CHECK(z[k] == doctest::Approx(before[k] + want).epsilon(1e-5));
    }
  }
}

TEST_CASE("a wide training step is Adagrad on the gradient x_f * coef, whatever the threads") {
  const data::Dataset d = random_points(100, 20, 12, 4);
  const WideLayer start = WideLayer::from_centroids(d, 20, 12, {});
  const StepBatch b(d, 0.01f);
  const auto& [inputs, own, pairs, owners, coef, grad] = b;
  // Reference: every entry's gradient summed densely over the slots, then one Adagrad step.
  Dense want = entries_of(start);
  std::size_t stepped = 0;
  for (auto& [key, w] : want)
    if (const auto it = grad.find(key); it != grad.end() && it->second != 0)
      w -= 0.1f * it->second / (std::abs(it->second) + 1e-7f), ++stepped;
  REQUIRE(stepped > 10);
  std::vector<std::vector<float>> results;
  for (const int threads : {1, 2}) {
    WideLayer w = start;
    WideBatch batch;
    std::vector<float> z(pairs.num_pairs());
    tbb::task_arena(threads).execute([&] {
      batch.build(inputs, w.num_features());
      CHECK(contains(error_of([&] { w.train_step(batch, pairs, coef.data(), 0.1f, 1e-7f); }),
                     "without add_scores"));
      w.prepare_training();
      w.add_scores(batch, pairs, z.data());  // notes the hits train_step follows
      w.train_step(batch, pairs, coef.data(), 0.1f, 1e-7f);
    });
    check_close(entries_of(w), want);
    results.emplace_back(w.weights().begin(), w.weights().end());
  }
  CHECK(results[0] == results[1]);
}

TEST_CASE("while training, every reader sees the steps taken, and sums written are taken up") {
  // train_step updates a label-major copy; score(), weights() and optimizer_sums() must see it,
  // and sums written through optimizer_sums() (a checkpoint loading) must reach the next step.
  const data::Dataset d = random_points(100, 20, 12, 5);
  WideLayer w = WideLayer::from_centroids(d, 20, 12, {});
  const Dense start = entries_of(w);
  const StepBatch b(d, -0.02f);
  const auto& [inputs, own, pairs, owners, coef, grad] = b;
  WideBatch batch;
  const auto step = [&] {
    std::vector<float> z(pairs.num_pairs());
    batch.build(inputs, w.num_features());
    w.prepare_training();
    w.add_scores(batch, pairs, z.data());
    w.train_step(batch, pairs, coef.data(), 0.1f, 1e-7f);
  };
  step();
  // Scores from several threads at once, the first of them bringing the steps back.
  const data::Dataset q = random_points(64, 20, 12, 6);
  std::vector<WideScores> scores(q.num_points());
  tbb::parallel_for(std::size_t{0}, q.num_points(),
                    [&](std::size_t i) { w.score(q.features(i), scores[i]); });
  Dense want = start, want_sums;
  for (auto& [key, v] : want) {
    const auto it = grad.find(key);
    const float g = it == grad.end() ? 0.0f : it->second;
    if (g != 0) v -= 0.1f * g / (std::abs(g) + 1e-7f);
    want_sums[key] = g * g;
  }
  check_close(entries_of(w), want);
  check_close(sums_of(w), want_sums);
  std::size_t moved = 0;
  for (std::size_t i = 0; i < q.num_points(); ++i)
    for (std::uint32_t l = 0; l < 12; ++l) {
      double s = 0;
      for (std::size_t k = 0; k < q.features(i).size(); ++k)
        if (const auto it = want.find({q.features(i).ids[k], l}); it != want.end())
          s += double(q.features(i).values[k]) * it->second;
      CHECK(scores[i][l] == doctest::Approx(s).epsilon(1e-5));
      moved += scores[i][l] != 0;
    }
  REQUIRE(moved > 50);
  // Sums written from outside: the next step divides by their square roots.
  for (float& v : w.optimizer_sums()) v = 1e4f;
  step();
  for (auto& [key, v] : want)
    if (const auto it = grad.find(key); it != grad.end() && it->second != 0)
      v -= 0.1f * it->second / (std::sqrt(1e4f + it->second * it->second) + 1e-7f);
  check_close(entries_of(w), want);
  // The end of a run frees the copy after copying it back; training again builds it anew.
  w.end_training();
  check_close(entries_of(w), want);
  std::vector<float> z(pairs.num_pairs());
  CHECK(contains(error_of([&] { w.add_scores(batch, pairs, z.data()); }),
                 "prepare_training not called"));
  step();
  for (auto& [key, v] : want)
    if (const auto it = grad.find(key); it != grad.end() && it->second != 0) {
      const float s = 1e4f + 2 * it->second * it->second;
      v -= 0.1f * it->second / (std::sqrt(s) + 1e-7f);
    }
  check_close(entries_of(w), want);
}

TEST_CASE("stored wide arrays are checked and each fault named") {
  const auto make = [](std::vector<std::uint64_t> o, std::vector<std::uint32_t> l,
                       std::vector<float> w) {
    return error_of([&] {
      WideLayer::from_arrays(3, 5, o, AlignedArray<std::uint32_t>(l), AlignedArray<float>(w),
                             "m.glide: the wide layer");
    });
  };
  CHECK(make({0, 1, 1, 2}, {4, 0}, {1, 2}).empty());
  CHECK(contains(make({0, 1, 2}, {4, 0}, {1, 2}), "3 offsets for 3 features"));
  CHECK(contains(make({0, 1, 1, 2}, {4, 0}, {1}), "2 labels but 1 weights"));
  CHECK(contains(make({0, 1, 1, 3}, {4, 0}, {1, 2}), "from 0 to the entry count"));
  CHECK(contains(make({0, 2, 1, 2}, {0, 4}, {1, 2}), "decrease at feature 1"));
  CHECK(contains(make({0, 1, 1, 2}, {5, 0}, {1, 2}), "label 5 of feature 0 is out of range"));
  CHECK(contains(make({0, 2, 2, 2}, {3, 1}, {1, 2}), "feature 0 are not ascending"));
  CHECK(contains(make({0, 1, 1, 2}, {4, 0}, {1, NAN}), "not finite"));
}

TEST_CASE("the exact predictor adds the wide scores to every label's logit") {
  // A wide layer over every label, and the rare labels' path, whose inputs reach fewer labels;
  // over labels in several of the predictor's blocks of 1,024 (each block adds the wide scores
  // of its own labels).
  for (const WideMode mode : {WideMode::kOn, WideMode::kTail}) {
    CAPTURE(mode == WideMode::kTail);
    engine::testing::SmallProblem problem{0.3, 3000};
    problem.config.net.wide = mode;
    problem.config.net.wide_tail_points = 1;
    auto net = std::make_shared<Network>(problem.config.net);
    {
      tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
      Trainer trainer(*net, problem.config.train,
                      make_training_sampler(problem.config, *net, false));
      fit(*net, trainer, problem.data.train, problem.config.train, {});
    }
    REQUIRE(!net->wide.empty());
    const ExactPredictor exact(net);
    const std::uint32_t L = problem.config.net.num_labels;
    std::vector<data::SparseView> inputs;
    for (std::size_t i = 0; i < 20; ++i) inputs.push_back(problem.data.test.features(i));
    std::vector<Prediction> a, b;
    exact.predict(inputs, L, a);
    // Walking the label lists block by block and listing each input's labels give the same
    // labels and scores, on one thread and on several (whose ranges of blocks seek mid-way).
    for (const int threads : {1, 3}) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
      std::vector<Prediction> walked, listed;
      ExactPredictor(net, WideScoring::kWalk).predict(inputs, L, walked);
      ExactPredictor(net, WideScoring::kLists).predict(inputs, L, listed);
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        CHECK(walked[i].labels == a[i].labels);
        CHECK(listed[i].labels == a[i].labels);
        CHECK(walked[i].scores == a[i].scores);
        CHECK(listed[i].scores == a[i].scores);
      }
    }
    WideLayer wide = std::move(net->wide);
    net->wide = WideLayer();
    exact.predict(inputs, L, b);  // the same network without its wide layer
    net->wide = std::move(wide);
    WideScores s;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      net->wide.score(inputs[i], s);
      // log p_with(l) - log p_without(l) - wide(l) is the same for every label (the normalisers).
      std::vector<double> lw(L), lo(L);
      for (std::uint32_t r = 0; r < L; ++r) {
        lw[a[i].labels[r]] = std::log(double(a[i].scores[r]));
        lo[b[i].labels[r]] = std::log(double(b[i].scores[r]));
      }
      const double c = lw[0] - lo[0] - s[0];
      for (std::uint32_t l = 0; l < L; l += 7)
        CHECK(lw[l] - lo[l] - s[l] == doctest::Approx(c).epsilon(1e-3));
    }
  }
}

TEST_CASE("sampled prediction adds the best wide labels as candidates and their scores") {
  // One feature reaching labels 2, 5, 9, 11 and 12 (12 ties 5), the input reaching them with 1.
  const std::vector<std::uint32_t> wide_labels{2, 5, 9, 11, 12};
  const std::vector<float> wide_weights{0.5f, 3.0f, 2.0f, -1.0f, 3.0f};
  const WideLayer w =
      WideLayer::from_arrays(1, 16, {0, 5}, AlignedArray<std::uint32_t>(wide_labels),
                             AlignedArray<float>(wide_weights), "test");
  const std::vector<std::uint32_t> feature{0};
  const std::vector<float> one{1.0f};
  WideScores s;
  w.score({feature, one}, s);
  std::vector<std::uint32_t> labels{9, 1};
  add_wide_candidates(s, 3, labels);
  // 5, 12 (the tie: the lower label first) and 9 are the best; 9 is there already.
  CHECK(labels == std::vector<std::uint32_t>{9, 1, 5, 12});
  std::vector<float> z(labels.size(), 1.0f);
  add_wide_scores(s, labels, z.data());
  CHECK(z == std::vector<float>{3.0f, 1.0f, 4.0f, 4.0f});  // 1 is not reached
  labels = {7};
  add_wide_candidates(s, 1, labels);
  CHECK(labels == std::vector<std::uint32_t>{7, 5});
  // Against a full sort of every reached label, over many labels and counts.
  constexpr std::uint32_t kLabels = 300;
  const data::Dataset many = random_points(900, 30, kLabels, 6);
  const WideLayer wm = WideLayer::from_centroids(many, 30, kLabels, {.max_per_label = 8});
  for (std::size_t i = 0; i < 20; ++i) {
    wm.score(many.features(i), s);
    std::vector<std::pair<float, std::uint32_t>> all;
    for (const std::uint32_t l : s.labels()) all.emplace_back(-s[l], l);
    std::sort(all.begin(), all.end());
    for (const std::uint32_t count : {1u, 7u, 64u, 1000u}) {
      std::vector<std::uint32_t> got, want;
      add_wide_candidates(s, count, got);
      for (std::size_t q = 0; q < std::min<std::size_t>(count, all.size()); ++q)
        want.push_back(all[q].second);
      CHECK(got == want);
    }
  }
}

TEST_CASE("a model with a wide layer saves and loads it; older files have none") {
  engine::testing::SmallProblem problem{0.2};
  problem.config.net.wide = WideMode::kOn;
  Network net(problem.config.net);
  Trainer trainer(net, problem.config.train, make_training_sampler(problem.config, net, false));
  fit(net, trainer, problem.data.train, problem.config.train, {});
  const std::string path = engine::testing::temp_path("wide_layer_test", "w.glide");
  save_model(path, net, problem.config, {1, 1});
  LoadedModel m = load_model(path);
  CHECK(m.net->wide.offsets() == net.wide.offsets());
  CHECK(std::ranges::equal(m.net->wide.labels(), net.wide.labels()));
  CHECK(std::ranges::equal(m.net->wide.weights(), net.wide.weights()));
  CHECK(std::ranges::equal(m.net->wide.optimizer_sums(), net.wide.optimizer_sums()));
  CHECK(load_model(path, /*optimizer_state=*/false).net->wide.optimizer_sums().empty());

  NetworkConfig legacy = problem.config.net;
  keep_legacy_network(R"({"network": {"num_features": 3}})", legacy);
  CHECK(legacy.wide == WideMode::kOff);
  keep_legacy_network(R"({"network": {"wide": "on"}})", problem.config.net);
  CHECK(problem.config.net.wide == WideMode::kOn);
  TrainConfig train;
  keep_legacy_output_optimizer(R"({"train": {"output_optimizer": "adagrad"}})", train);
  CHECK(train.output_eps == train.eps);
}
