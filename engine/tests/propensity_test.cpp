// Propensity-scored precision: the inverse propensities against values computed apart from the
// code (the XC repository's formula, evaluated in Python), and the evaluator's PSP@k against its
// definition over fixed predictions, with the perfect ranking scoring 1.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/error.h"
#include "engine/evaluator.h"
#include "engine/propensity.h"

namespace glide::engine {
// Named: a unity build puts several test files in one unit.
namespace propensity_test {
namespace {

constexpr std::uint32_t kLabels = 12;

// Answers each input with the labels fixed for its first feature id (the point's index).
class FixedPredictor final : public Predictor {
 public:
  explicit FixedPredictor(std::map<std::uint32_t, std::vector<std::uint32_t>> answers)
      : Predictor(tiny_network()), answers_(std::move(answers)) {}

  void predict_from_hidden(const HiddenActivations&, std::size_t, std::uint32_t,
                           const SearchParams&, std::vector<Prediction>&) const override {
    FAIL("not used");
  }

 protected:
  void predict_checked(std::span<const data::SparseView> inputs, std::uint32_t k,
                       const SearchParams&, std::vector<Prediction>& out) const override {
    out.assign(inputs.size(), {});
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto& labels = answers_.at(inputs[i].ids[0]);
      out[i].labels.assign(labels.begin(),
                           labels.begin() + std::min<std::size_t>(k, labels.size()));
      out[i].scored = kLabels;
    }
  }

 private:
  static std::shared_ptr<const Network> tiny_network() {
    NetworkConfig c;
    c.num_features = 64;
    c.num_labels = kLabels;
    c.hidden = {4};
    return std::make_shared<const Network>(c);
  }
  std::map<std::uint32_t, std::vector<std::uint32_t>> answers_;
};

// Point i has the single feature i and the given labels.
data::Dataset points_with(const std::vector<std::vector<std::uint32_t>>& labels) {
  data::Dataset ds;
  ds.num_features = 64;
  ds.num_labels = kLabels;
  for (std::uint32_t i = 0; i < labels.size(); ++i) {
    const std::uint32_t id = i;
    const float one = 1;
    ds.add_point(std::span(&id, 1), std::span(&one, 1), labels[i]);
  }
  return ds;
}

TEST_CASE("inverse propensities follow the XC repository's model") {
  const std::vector<std::uint32_t> counts{0, 1, 10, 100};
  const InversePropensity w(counts, 1000);
  // 1 + C (N + B)^-A, C = (ln n - 1)(B + 1)^A at A 0.55, B 1.5, n 1000 (Python, double).
  CHECK(w(0) == doctest::Approx(8.824188577703566).epsilon(1e-12));
  CHECK(w(1) == doctest::Approx(6.907755278982138).epsilon(1e-12));  // a label seen once: ln n
  CHECK(w(2) == doctest::Approx(3.5521470235083683).epsilon(1e-12));
  CHECK(w(3) == doctest::Approx(1.7704299874036118).epsilon(1e-12));
  CHECK(w(7) == w(0));  // beyond the counts: as never seen
  const InversePropensity other(counts, 50, {.a = 0.55, .b = 1.5});
  CHECK(other(0) == doctest::Approx(4.856662312695943).epsilon(1e-12));
  // Too few points for the model: every label weighs 1.
  CHECK(InversePropensity(counts, 2)(1) == 1.0);
  CHECK_THROWS_AS(InversePropensity(counts, 0), Error);
  CHECK_THROWS_AS(InversePropensity(counts, 10, {.a = 0, .b = 1.5}), Error);
  CHECK_THROWS_AS(InversePropensity(counts, 10, {.a = 0.55, .b = -1}), Error);
}

TEST_CASE("InversePropensity::of counts the training set's labels") {
  const data::Dataset train = points_with({{0, 1}, {1}, {1, 2}, {}, {5}});
  const InversePropensity w = InversePropensity::of(train);
  const std::vector<std::uint32_t> counts{1, 3, 1, 0, 0, 1};
  const InversePropensity want(counts, 5);
  for (std::uint32_t l = 0; l < kLabels; ++l) CHECK(w(l) == want(l));
}

TEST_CASE("PSP@k is the weighted hits of the top-k over the best any ranking reaches") {
  // Training counts make label 0 frequent and labels 3, 4, 5 rare.
  const std::vector<std::uint32_t> counts{500, 200, 50, 3, 1, 0, 100, 100, 100, 100, 100, 100};
  const InversePropensity w(counts, 1000);
  const std::vector<std::vector<std::uint32_t>> truth{{0, 3}, {1, 4, 5}, {2}, {0, 1, 2, 6, 7, 8}};
  const data::Dataset test = points_with(truth);
  const std::map<std::uint32_t, std::vector<std::uint32_t>> answers{
      {0, {0, 9, 3, 10, 11}}, {1, {5, 1, 9, 10, 11}}, {2, {9, 10, 2, 11, 6}}, {3, {8, 0, 9, 1, 3}}};
  EvalOptions eo;
  eo.propensity = &w;
  const EvalResult got = evaluate(FixedPredictor(answers), test, eo);
  REQUIRE(got.has_psp);
  REQUIRE(got.points == truth.size());
  for (std::size_t k = 1; k <= EvalResult::kMaxK; ++k) {
    // The definition, point by point: (1/k) sum over the top-k of [l relevant] / p_l, averaged,
    // over the same for each point's labels in order of weight.
    double gained = 0, best = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) {
      const auto& top = answers.at(static_cast<std::uint32_t>(i));
      for (std::size_t j = 0; j < k; ++j)
        if (std::count(truth[i].begin(), truth[i].end(), top[j])) gained += w(top[j]) / k;
      std::vector<double> ideal;
      for (const std::uint32_t l : truth[i]) ideal.push_back(w(l));
      std::sort(ideal.rbegin(), ideal.rend());
      for (std::size_t j = 0; j < std::min(k, ideal.size()); ++j) best += ideal[j] / k;
    }
    CAPTURE(k);
    CHECK(got.psp[k - 1] == doctest::Approx(gained / best).epsilon(1e-12));
    CHECK(got.psp[k - 1] < 1);
  }
  // The hits are the same as P@k counts them.
  CHECK(got.precision[0] == doctest::Approx(3.0 / 4));
  // Without propensities there is no PSP.
  CHECK_FALSE(evaluate(FixedPredictor(answers), test, EvalOptions{}).has_psp);
}

TEST_CASE("each point's labels ranked by weight score PSP@k 1; the reverse order scores less") {
  const std::vector<std::uint32_t> counts{500, 200, 50, 3, 1, 0, 100, 100, 100, 100, 100, 100};
  const InversePropensity w(counts, 1000);
  const std::vector<std::vector<std::uint32_t>> truth{{0, 3}, {1, 4, 5}, {2}, {0, 1, 2, 6, 3, 5}};
  const data::Dataset test = points_with(truth);
  std::map<std::uint32_t, std::vector<std::uint32_t>> best, worst;
  for (std::uint32_t i = 0; i < truth.size(); ++i) {
    auto ranked = truth[i];
    std::sort(ranked.begin(), ranked.end(), [&](auto a, auto b) { return w(a) > w(b); });
    for (std::uint32_t filler = 7; ranked.size() < EvalResult::kMaxK; ++filler)
      ranked.push_back(filler);  // labels 7.. are no point's
    best[i] = ranked;
    std::reverse(ranked.begin(), ranked.begin() + truth[i].size());
    worst[i] = ranked;
  }
  EvalOptions eo;
  eo.propensity = &w;
  const EvalResult top = evaluate(FixedPredictor(best), test, eo);
  const EvalResult reversed = evaluate(FixedPredictor(worst), test, eo);
  for (int k = 0; k < EvalResult::kMaxK; ++k) {
    CAPTURE(k);
    CHECK(top.psp[k] == doctest::Approx(1.0).epsilon(1e-12));
    // The same labels, so the same P@k, but the rare ones later.
    CHECK(reversed.precision[k] == doctest::Approx(top.precision[k]));
    if (k < EvalResult::kMaxK - 1) CHECK(reversed.psp[k] < top.psp[k]);
  }
}

}  // namespace
}  // namespace propensity_test
}  // namespace glide::engine
