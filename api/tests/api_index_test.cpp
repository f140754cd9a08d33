// The output index through the public API: build_index(), PredictOptions::probes reaching the
// search (more probes score more labels and find the exact top label at least as often), the
// index saved with the model and dropped by training. Only the public header is included.
#include <doctest/doctest.h>

#include <glide/glide.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>

// Named: a unity build puts several test files in one unit.
namespace api_index_test {
namespace {

// 400 labels: far more than the index's head labels (candidates of every query), so how many
// clusters are searched changes what is scored.
constexpr std::uint32_t kFeatures = 3200, kLabels = 400;

// Planted data: label j owns 8 features; a point of label j has 6 of them plus 2 random ones.
glide::SparseBatch planted(std::size_t points, std::uint32_t seed) {
  std::mt19937 rng(seed);
  glide::SparseBatch b;
  std::vector<std::uint32_t> ids;
  for (std::size_t i = 0; i < points; ++i) {
    const std::uint32_t label = rng() % kLabels;
    ids.clear();
    for (int t = 0; t < 6; ++t) ids.push_back(label * 8 + rng() % 8);
    for (int t = 0; t < 2; ++t) ids.push_back(rng() % kFeatures);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    const std::vector<float> vals(ids.size(), 1.0f / std::sqrt(static_cast<float>(ids.size())));
    const std::uint32_t labels[1] = {label};
    b.add_row(ids, vals, labels);
  }
  return b;
}

glide::Model trained(const glide::SparseBatch& train) {
  glide::ModelConfig c;
  c.num_features = kFeatures;
  c.num_labels = kLabels;
  c.hidden = {32};
  c.sparsity = 0.1;
  c.lsh.K = 3;
  c.lsh.L = 8;
  c.lsh.range_pow = 6;
  c.lsh.bucket_size = 16;
  glide::TrainOptions o;
  o.batch = 32;
  o.epochs = 3;
  o.threads = 2;
  glide::Model m = glide::Model::create(c, o);
  m.train(train.view(), o);
  return m;
}

std::string temp_file(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("glide_api_index_test_" +
                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

}  // namespace

TEST_CASE("probes reach the output index: more probes score more and find the exact top label") {
  const glide::SparseBatch train = planted(2000, 1), test = planted(200, 2);
  glide::Model m = trained(train);
  CHECK(m.has_index());         // train() builds one at its end by default, as glide train does
  m.build_index(train.view());  // rebuilt: the same data gives the same index
  REQUIRE(m.has_index());

  const auto exact = m.predict(test.view(), 5);
  const auto narrow =
      m.predict(test.view(), 5, {.mode = glide::PredictMode::kSampled, .probes = 1});
  const auto fallback = m.predict(test.view(), 5, glide::PredictMode::kSampled);  // 4 probes
  const auto wide =
      m.predict(test.view(), 5, {.mode = glide::PredictMode::kSampled, .probes = 1 << 20});
  std::uint64_t scored[3] = {}, found[3] = {};
  for (std::size_t i = 0; i < test.rows(); ++i) {
    CAPTURE(i);
    CHECK(exact[i].scored == kLabels);
    // The candidates of more probes include those of fewer (best clusters first).
    CHECK(narrow[i].scored <= fallback[i].scored);
    CHECK(fallback[i].scored <= wide[i].scored);
    CHECK(wide[i].scored <= kLabels);
    const glide::Prediction* p[3] = {&narrow[i], &fallback[i], &wide[i]};
    for (int j = 0; j < 3; ++j) {
      scored[j] += p[j]->scored;
      found[j] += !p[j]->labels.empty() && p[j]->labels[0] == exact[i].labels[0];
    }
  }
  CHECK(scored[0] < scored[1]);
  CHECK(scored[1] < scored[2]);
  // The exact top label, once a candidate, is the sampled top label too.
  CHECK(found[0] <= found[1]);
  CHECK(found[1] <= found[2]);

  // One input answers as in a batch; evaluate() searches with the same probes.
  const glide::Prediction one =
      m.predict(glide::SparseVectorView{std::span(test.feature_ids).subspan(0, test.row_offsets[1]),
                                        std::span(test.values).subspan(0, test.row_offsets[1])},
                5, {.mode = glide::PredictMode::kSampled, .probes = 1});
  CHECK(one.labels == narrow[0].labels);
  CHECK(one.scored == narrow[0].scored);
  std::size_t hits = 0;
  for (std::size_t i = 0; i < test.rows(); ++i)
    hits += !narrow[i].labels.empty() && narrow[i].labels[0] == test.label_ids[i];
  CHECK(m.evaluate(test.view(), {.mode = glide::PredictMode::kSampled, .probes = 1}).p_at(1) ==
        doctest::Approx(static_cast<double>(hits) / test.rows()));

  // Saved with the model; the loaded one answers alike.
  const std::string path = temp_file("m.glide");
  m.save(path, false);
  const glide::Model loaded = glide::Model::load(path, false);
  CHECK(loaded.has_index());
  const auto reloaded =
      loaded.predict(test.view(), 5, {.mode = glide::PredictMode::kSampled, .probes = 1});
  for (std::size_t i = 0; i < test.rows(); ++i) {
    CHECK(reloaded[i].labels == narrow[i].labels);
    CHECK(reloaded[i].scored == narrow[i].scored);
  }
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());

  // Training changes the weights the index was built for: it is rebuilt at the end, or dropped
  // without build_index (sampled mode then searches the LSH tables); a batch without labels
  // cannot build one.
  glide::TrainOptions more = m.train_options();
  more.epochs = 0.1;
  more.build_index = false;
  m.train(train.view(), more);
  CHECK_FALSE(m.has_index());
  more.build_index = true;
  m.train(train.view(), more);
  CHECK(m.has_index());
  more.build_index = false;
  m.train(train.view(), more);
  CHECK_FALSE(m.has_index());
  glide::SparseBatchView unlabelled = test.view();
  unlabelled.label_offsets = {};
  CHECK_THROWS_AS(m.build_index(unlabelled), glide::Error);
  CHECK_FALSE(m.has_index());
}

}  // namespace api_index_test
