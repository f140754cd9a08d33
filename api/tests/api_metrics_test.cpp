// Metrics through the public API: the evaluations during training, and evaluate() given the
// training data, score PSP@k with the training data's label counts, equal to its definition over
// the trained model's own top labels. Only the public header is included.
#include <doctest/doctest.h>

#include <glide/glide.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <vector>

// Named: a unity build puts several test files in one unit.
namespace api_metrics_test {
namespace {

constexpr std::uint32_t kFeatures = 400, kLabels = 40;

// Planted data with skewed labels (the smaller of two uniform draws: label 0 is ~80 times as
// frequent as label 39), so that rarity weights differ; every third point has a second label.
// Label j owns 8 features; a point has 5 of each of its labels' plus 2 random ones.
glide::SparseBatch skewed(std::size_t points, std::uint32_t seed) {
  std::mt19937 rng(seed);
  glide::SparseBatch b;
  std::vector<std::uint32_t> ids, labels;
  for (std::size_t i = 0; i < points; ++i) {
    const auto draw = [&] { return std::min<std::uint32_t>(rng() % kLabels, rng() % kLabels); };
    labels = {draw()};
    if (i % 3 == 0) labels.push_back(draw());
    std::sort(labels.begin(), labels.end());
    labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
    ids.clear();
    for (const std::uint32_t l : labels)
      for (int t = 0; t < 5; ++t) ids.push_back(l * 8 + rng() % 8);
    for (int t = 0; t < 2; ++t) ids.push_back(rng() % kFeatures);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    const std::vector<float> vals(ids.size(), 1.0f / std::sqrt(static_cast<float>(ids.size())));
    b.add_row(ids, vals, labels);
  }
  return b;
}

// PSP@k by its definition (Jain et al. 2016, normalised as pyxclib's psprecision): a label seen
// N times in n training points weighs 1 + C (N + B)^-A, C = (ln n - 1)(B + 1)^A, A = 0.55,
// B = 1.5; the top k's weighted hits summed over the points, over the same sum for each point's
// own labels ranked by weight.
double psp_by_definition(const glide::SparseBatch& train, const glide::SparseBatch& test,
                         const std::vector<glide::Prediction>& top, int k) {
  const double a = 0.55, b = 1.5;
  std::vector<double> count(kLabels, 0);
  for (const std::uint32_t l : train.label_ids) ++count[l];
  const double c = (std::log(static_cast<double>(train.rows())) - 1) * std::pow(b + 1, a);
  const auto weight = [&](std::uint32_t l) { return 1 + c * std::pow(count[l] + b, -a); };
  double gained = 0, best = 0;
  for (std::size_t i = 0; i < test.rows(); ++i) {
    const std::vector<std::uint32_t> truth(test.label_ids.begin() + test.label_offsets[i],
                                           test.label_ids.begin() + test.label_offsets[i + 1]);
    for (int j = 0; j < k && j < static_cast<int>(top[i].labels.size()); ++j)
      if (std::find(truth.begin(), truth.end(), top[i].labels[j]) != truth.end())
        gained += weight(top[i].labels[j]);
    std::vector<double> own;
    for (const std::uint32_t l : truth) own.push_back(weight(l));
    std::sort(own.begin(), own.end(), std::greater<>());
    for (int j = 0; j < k && j < static_cast<int>(own.size()); ++j) best += own[j];
  }
  return gained / best;
}

}  // namespace

TEST_CASE("evaluations during training score PSP@k with the training data's label counts") {
  const glide::SparseBatch train = skewed(800, 1), test = skewed(300, 2);
  glide::ModelConfig config;
  config.num_features = kFeatures;
  config.num_labels = kLabels;
  config.hidden = {32};
  config.sampling = glide::Sampling::kDense;
  glide::Model model = glide::Model::create(config);
  glide::TrainOptions o;
  o.epochs = 6;
  o.batch = 32;
  o.lr = 0.01;
  glide::Metrics last;
  int evals = 0;
  model.train(
      train.view(), o,
      [&](const glide::TrainProgress& p) {
        if (p.has_eval) {
          last = p.eval;
          ++evals;
        }
        return true;
      },
      test.view());
  REQUIRE(evals == 6);
  REQUIRE(last.has_psp);
  // The last evaluation came after the last batch: the model as it is now.
  const std::vector<glide::Prediction> top = model.predict(test.view(), 5);
  CHECK(last.p_at(1) == doctest::Approx(model.evaluate(test.view()).p_at(1)));
  CHECK(last.p_at(1) > 0.5);
  for (int k = 1; k <= 5; ++k) {
    CAPTURE(k);
    CHECK(last.psp_at(k) == doctest::Approx(psp_by_definition(train, test, top, k)));
    CHECK(last.psp_at(k) > 0);
    CHECK(last.psp_at(k) <= 1);
  }
  // Weighting by rarity changes the score: the rare labels are found less often.
  CHECK(std::abs(last.psp_at(1) - last.p_at(1)) > 0.01);
  CHECK_THROWS_AS(last.psp_at(0), glide::Error);
  // With the training data, the same PSP@k as the evaluation during training, and the same P@k
  // as without. Without it, the label counts the trained model keeps give the same PSP@k, in
  // memory and after a save and load; a model that never trained has none, so no PSP@k.
  const glide::Metrics plain = model.evaluate(test.view());
  const glide::Metrics weighted = model.evaluate(test.view(), train.view());
  REQUIRE(weighted.has_psp);
  REQUIRE(plain.has_psp);
  const auto path = std::filesystem::temp_directory_path() /
                    ("glide_api_metrics_test_" + std::to_string(std::random_device{}()) + ".glide");
  model.save(path.string());
  const glide::Metrics loaded = glide::Model::load(path.string()).evaluate(test.view());
  std::filesystem::remove(path);
  REQUIRE(loaded.has_psp);
  for (int k = 1; k <= 5; ++k) {
    CAPTURE(k);
    CHECK(weighted.psp_at(k) == doctest::Approx(last.psp_at(k)));
    CHECK(weighted.p_at(k) == plain.p_at(k));
    CHECK(plain.psp_at(k) == doctest::Approx(weighted.psp_at(k)));
    CHECK(loaded.psp_at(k) == doctest::Approx(weighted.psp_at(k)));
  }
  const glide::Metrics untrained = glide::Model::create(config).evaluate(test.view());
  CHECK(!untrained.has_psp);
  CHECK_THROWS_AS(untrained.psp_at(1), glide::Error);
  // Training data the model cannot hold, or none, is an error naming it.
  glide::SparseBatch wrong = skewed(10, 3);
  wrong.label_ids[0] = kLabels;
  CHECK_THROWS_WITH_AS(model.evaluate(test.view(), wrong.view()),
                       doctest::Contains("training batch"), glide::Error);
  CHECK_THROWS_WITH_AS(model.evaluate(test.view(), glide::SparseBatch{}.view()),
                       doctest::Contains("training batch"), glide::Error);
}

}  // namespace api_metrics_test
