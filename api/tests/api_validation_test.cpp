// TrainOptions::valid_points as a library user sees it: the model keeps the weights of its best
// validation (re-scored on the same held-out rows it gives the reported metrics), patience ends
// a call early, and misuse is refused.
#include <doctest/doctest.h>

#include <glide/glide.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace api_validation_test {

constexpr std::uint32_t kFeatures = 240, kLabels = 40;

struct Row {
  std::vector<std::uint32_t> ids;
  std::vector<float> vals;
  std::uint32_t label;
};

// Planted data with noise: a point of label j has 3 of label j's 6 features and 3 random ones,
// and a fifth of the points carry a random label instead, so a large lr memorises them.
std::vector<Row> noisy_rows(std::size_t points, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Row> rows(points);
  for (Row& r : rows) {
    const std::uint32_t owner = rng() % kLabels;
    for (int t = 0; t < 3; ++t) r.ids.push_back(owner * 5 + rng() % 6);
    for (int t = 0; t < 3; ++t) r.ids.push_back(rng() % kFeatures);
    std::sort(r.ids.begin(), r.ids.end());
    r.ids.erase(std::unique(r.ids.begin(), r.ids.end()), r.ids.end());
    r.vals.assign(r.ids.size(), 1.0f);
    r.label = rng() % 5 == 0 ? rng() % kLabels : owner;
  }
  return rows;
}

glide::SparseBatch batch_of(const std::vector<Row>& rows, const std::vector<std::size_t>& which) {
  glide::SparseBatch b;
  for (const std::size_t i : which) {
    const std::uint32_t label[1] = {rows[i].label};
    b.add_row(rows[i].ids, rows[i].vals, label);
  }
  return b;
}

glide::ModelConfig config() {
  glide::ModelConfig c;
  c.num_features = kFeatures;
  c.num_labels = kLabels;
  c.hidden = {64};
  c.sampling = glide::Sampling::kRandom;
  c.sparsity = 0.3;
  c.wide = glide::Wide::kOff;
  return c;
}

// A constant, large lr for many epochs: validation scores rise, then fall.
glide::TrainOptions overfitting() {
  glide::TrainOptions o;
  o.lr = 0.05;
  o.output_lr = 1;
  o.lr_schedule = "constant";
  o.lr_decay = 1;
  o.batch = 32;
  o.epochs = 40;
  o.eval_every = 8;
  o.threads = 1;
  o.build_index = false;
  o.valid_points = 100;
  return o;
}

TEST_CASE("the model keeps its best validation's weights, and patience ends a call early") {
  const std::vector<Row> rows = noisy_rows(600, 3);
  std::vector<std::size_t> all(rows.size()), held;
  for (std::size_t i = 0; i < rows.size(); ++i) all[i] = i;
  for (std::size_t k = 0; k < 100; ++k) held.push_back(k * 6 + 5);  // every 6th, as documented
  const glide::SparseBatch train = batch_of(rows, all), valid = batch_of(rows, held);

  for (const std::uint32_t patience : {0u, 4u}) {
    CAPTURE(patience);
    glide::TrainOptions o = overfitting();
    o.patience = patience;
    glide::Model m = glide::Model::create(config(), o);
    std::vector<double> scores;
    std::vector<bool> flags;
    const glide::TrainResult r = m.train(train.view(), o, [&](const glide::TrainProgress& p) {
      if (p.has_validation) {
        CHECK(p.validation.points == 100);
        scores.push_back(p.validation.p_at(1) + p.validation.p_at(5));
        flags.push_back(p.best);
      }
      return true;
    });
    REQUIRE(r.has_validation);
    REQUIRE(scores.size() >= 3);
    double best = -1;
    std::size_t last_best = 0;
    for (std::size_t i = 0; i < scores.size(); ++i) {
      CHECK(flags[i] == (scores[i] > best));
      if (flags[i]) {
        best = scores[i];
        last_best = i;
      }
    }
    CHECK(r.best_validation.p_at(1) + r.best_validation.p_at(5) == best);
    CHECK(last_best < scores.size() - 1);  // the best came before the end: weights restored
    CHECK(r.best_samples < r.samples);
    CHECK(m.samples_trained() == r.best_samples);
    // The model scores on the held-out rows what its best validation scored.
    const glide::Metrics now = m.evaluate(valid.view());
    CHECK(now.p_at(1) == r.best_validation.p_at(1));
    CHECK(now.p_at(5) == r.best_validation.p_at(5));
    CHECK(r.patience_stopped == (patience > 0));
    if (patience) CHECK(scores.size() - 1 - last_best == patience);
  }
}

TEST_CASE("misuse: validation settings") {
  const std::vector<Row> rows = noisy_rows(200, 4);
  std::vector<std::size_t> all(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) all[i] = i;
  const glide::SparseBatch train = batch_of(rows, all);
  glide::TrainOptions o = overfitting();
  o.epochs = 1;
  glide::Model m = glide::Model::create(config(), o);
  o.valid_points = 101;
  CHECK_THROWS_WITH_AS(m.train(train.view(), o), doctest::Contains("valid_points 101"),
                       glide::Error);
  o.valid_points = 50;
  o.best_by = "p3";
  CHECK_THROWS_WITH_AS(m.train(train.view(), o), doctest::Contains("best_by"), glide::Error);
  o.best_by = "psp5";
  CHECK_NOTHROW(m.train(train.view(), o));
  o.valid_points = 0;
  o.patience = 2;
  CHECK_THROWS_WITH_AS(m.train(train.view(), o), doctest::Contains("patience"), glide::Error);
}

}  // namespace api_validation_test
