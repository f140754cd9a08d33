// The Predictor interface: the exact predictor against a brute-force top-k over every label, the
// input checks, k clamping, the sampled predictor's bookkeeping, and evaluate() through a
// predictor against the metrics of its own predictions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common/error.h"
#include "engine/evaluator.h"
#include "engine/output_weights.h"
#include "engine/predictor.h"
#include "engine/tests/random_vectors.h"

namespace glide::engine {
namespace {

constexpr std::uint32_t kFeatures = 200, kLabels = 70;

std::shared_ptr<const Network> small_network(LossKind loss = LossKind::kSoftmax) {
  NetworkConfig c;
  c.num_features = kFeatures;
  c.num_labels = kLabels;
  c.hidden = {24, 16};
  c.loss = loss;
  c.seed = 7;
  return std::make_shared<const Network>(c);
}

using Inputs = testing::RandomInputs;

Inputs random_inputs(std::size_t n, std::uint64_t seed) {
  return testing::random_inputs(n, seed, kFeatures, 12, 1.0f);
}

// Every label's score in double from the last hidden layer, softmax (or sigmoid), best first.
std::vector<std::pair<double, std::uint32_t>> brute_force(const Network& net,
                                                          const HiddenActivations& acts,
                                                          std::size_t s) {
  const ParamMatrix out = net.output->to_f32();
  std::vector<double> z(kLabels);
  for (std::uint32_t j = 0; j < kLabels; ++j) {
    double d = net.output_bias.w[j];
    for (std::uint32_t c = 0; c < out.cols; ++c)
      d += static_cast<double>(acts.last(s)[c]) * out.w[j * out.stride + c];
    z[j] = d;
  }
  std::vector<std::pair<double, std::uint32_t>> ranked;
  const double mx = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (double v : z) sum += std::exp(v - mx);
  for (std::uint32_t j = 0; j < kLabels; ++j)
    ranked.push_back({net.config().loss == LossKind::kSoftmax ? std::exp(z[j] - mx) / sum
                                                              : 1 / (1 + std::exp(-z[j])),
                      j});
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  return ranked;
}

TEST_CASE("the exact predictor's top-k is the brute-force top-k over every label") {
  for (const LossKind loss : {LossKind::kSoftmax, LossKind::kSigmoid}) {
    const auto net = small_network(loss);
    const ExactPredictor predictor(net);
    const Inputs in = random_inputs(9, 3);
    std::vector<Prediction> got;
    predictor.predict(in.views, 5, got);
    REQUIRE(got.size() == in.views.size());
    HiddenActivations acts;
    net->forward_hidden(in.views, acts, kernels());
    for (std::size_t s = 0; s < in.views.size(); ++s) {
      const auto want = brute_force(*net, acts, s);
      REQUIRE(got[s].labels.size() == 5);
      for (std::size_t r = 0; r < 5; ++r) {
        CHECK(got[s].labels[r] == want[r].second);
        CHECK(got[s].scores[r] == doctest::Approx(want[r].first).epsilon(1e-4));
      }
      CHECK(got[s].scored == kLabels);
      CHECK(got[s].exit_layer == -1);
    }
  }
}

TEST_CASE("predict checks k and every input, naming the input") {
  const ExactPredictor predictor(small_network());
  Inputs in = random_inputs(3, 4);
  std::vector<Prediction> out;
  CHECK_THROWS_WITH_AS(predictor.predict(in.views, 0, out),
                       doctest::Contains("k must be at least 1"), Error);
  in.ids[1][0] = kFeatures;
  CHECK_THROWS_WITH_AS(
      predictor.predict(in.views, 3, out),
      doctest::Contains("input 1: feature id 200 is out of range (the model has 200 features)"),
      Error);
  in.ids[1][0] = 0;
  in.values[2][0] = NAN;
  CHECK_THROWS_WITH_AS(predictor.predict(in.views, 3, out),
                       doctest::Contains("input 2: the value of feature"), Error);
  const data::SparseView uneven{in.ids[0], std::span(in.values[0]).first(0)};
  CHECK(input_problem(uneven, kFeatures).find("values (the lengths must match)") !=
        std::string::npos);
  CHECK(input_problem(in.views[0], kFeatures).empty());
}

TEST_CASE("k above the label count gives every label once; no inputs give no predictions") {
  const ExactPredictor predictor(small_network());
  const Inputs in = random_inputs(2, 5);
  std::vector<Prediction> out;
  predictor.predict(in.views, 1000, out);
  REQUIRE(out.size() == 2);
  std::vector<std::uint32_t> labels = out[0].labels;
  std::sort(labels.begin(), labels.end());
  std::vector<std::uint32_t> all(kLabels);
  std::iota(all.begin(), all.end(), 0u);
  CHECK(labels == all);
  CHECK(std::accumulate(out[0].scores.begin(), out[0].scores.end(), 0.0) ==
        doctest::Approx(1.0).epsilon(1e-4));
  predictor.predict({}, 3, out);
  CHECK(out.empty());
}

// Selects a fixed set of neurons for every input.
class FixedSampler : public OutputSampler {
 public:
  explicit FixedSampler(std::vector<std::uint32_t> rows) : rows_(std::move(rows)) {}
  void select(const float*, std::vector<std::uint32_t>& out) override { out = rows_; }

 private:
  std::vector<std::uint32_t> rows_;
};

TEST_CASE("the sampled predictor ranks only the rows its sampler selects, as the exact one does") {
  const auto net = small_network();
  const std::vector<std::uint32_t> rows{3, 17, 40, 41, 69};
  const SampledPredictor sampled(net, std::make_shared<FixedSampler>(rows));
  const ExactPredictor exact(net);
  const Inputs in = random_inputs(6, 6);
  std::vector<Prediction> s, e;
  sampled.predict(in.views, 3, s);
  exact.predict(in.views, kLabels, e);
  for (std::size_t i = 0; i < in.views.size(); ++i) {
    CHECK(s[i].scored == rows.size());
    // The exact ranking restricted to the selected rows.
    std::vector<std::uint32_t> want;
    for (std::uint32_t l : e[i].labels)
      if (std::find(rows.begin(), rows.end(), l) != rows.end() && want.size() < 3)
        want.push_back(l);
    CHECK(s[i].labels == want);
  }
  CHECK_THROWS_AS(SampledPredictor(net, nullptr), Error);
  CHECK_THROWS_AS(borrow_predictor(*net, EvalMode::kSampled, nullptr), Error);
}

TEST_CASE("evaluate through a predictor equals the metrics of its own predictions") {
  const auto net = small_network();
  const ExactPredictor predictor(net);
  const Inputs in = random_inputs(40, 8);
  data::Dataset ds;
  ds.num_features = kFeatures;
  ds.num_labels = kLabels;
  std::mt19937_64 rng(9);
  for (std::size_t i = 0; i < in.views.size(); ++i) {
    std::vector<std::uint32_t> labels;
    if (i % 7 != 3)  // some points without labels: skipped
      for (std::size_t q = 0; q < 1 + i % 3; ++q)
        labels.push_back(static_cast<std::uint32_t>(rng() % kLabels));
    ds.add_point(in.ids[i], in.values[i], labels);
  }
  std::vector<Prediction> preds;
  predictor.predict(in.views, EvalResult::kMaxK, preds);
  EvalResult want;
  for (std::size_t i = 0; i < ds.num_points(); ++i)
    if (!ds.labels(i).empty()) accumulate_metrics(preds[i], ds.labels(i), want);
  // Batches of 16 cross the unlabelled points; the result does not depend on batching.
  const EvalResult got = evaluate(predictor, ds, 0, 16);
  REQUIRE(got.points == want.points);
  for (int k = 0; k < EvalResult::kMaxK; ++k) {
    CHECK(got.precision[k] == doctest::Approx(want.precision[k] / want.points));
    CHECK(got.ndcg[k] == doctest::Approx(want.ndcg[k] / want.points));
  }
  CHECK(got.mean_scored == kLabels);
  // The training-time form over a bare network gives the same.
  const EvalResult bare = evaluate(*net, ds, EvalMode::kExact, nullptr, 0, 16);
  CHECK(bare.precision[0] == got.precision[0]);
  CHECK(evaluate(predictor, ds, 10).points < got.points);
  ds.num_features = kFeatures + 1;
  CHECK_THROWS_AS(evaluate(predictor, ds), Error);
}

}  // namespace
}  // namespace glide::engine
