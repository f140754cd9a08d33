// The parts of the public API the Python module builds on: check_batch() on its own,
// Model::quantize() against the fp32 model it came from, default_config_json().
#include <doctest/doctest.h>

#include <glide/glide.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>

// Named: a unity build puts several test files in one unit.
namespace api_quantize_test {
namespace {

constexpr std::uint32_t kFeatures = 200, kLabels = 20;

// Label j owns features 10j..10j+9; a point of label j has 5 of them.
glide::SparseBatch planted(std::size_t points, std::uint32_t seed) {
  std::mt19937 rng(seed);
  glide::SparseBatch b;
  for (std::size_t i = 0; i < points; ++i) {
    const std::uint32_t label = rng() % kLabels;
    std::vector<std::uint32_t> ids;
    for (int t = 0; t < 5; ++t) ids.push_back(label * 10 + rng() % 10);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    const std::vector<float> vals(ids.size(), 1.0f);
    const std::uint32_t labels[1] = {label};
    b.add_row(ids, vals, labels);
  }
  return b;
}

glide::Model trained() {
  glide::ModelConfig c;
  c.num_features = kFeatures;
  c.num_labels = kLabels;
  c.hidden = {16};
  c.sampling = glide::Sampling::kDense;
  glide::TrainOptions o;
  o.lr = 0.01;
  o.batch = 32;
  o.epochs = 5;
  o.threads = 2;
  glide::Model m = glide::Model::create(c, o);
  m.train(planted(400, 1).view(), o);
  return m;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const glide::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("check_batch reports each rule without a model") {
  const glide::SparseBatch b = planted(10, 2);
  glide::check_batch(b.view(), kFeatures, kLabels, true);  // valid: no throw
  CHECK(contains(error_of([&] { glide::check_batch(b.view(), 5, kLabels, false, "X"); }),
                 "X: row 0: feature id"));
  CHECK(contains(error_of([&] { glide::check_batch(b.view(), kFeatures, 1, true, "Y"); }),
                 "is out of range (the model has 1 labels)"));
  glide::SparseBatchView unlabelled = b.view();
  unlabelled.label_offsets = {};
  glide::check_batch(unlabelled, kFeatures, kLabels, false);
  CHECK(contains(error_of([&] { glide::check_batch(unlabelled, kFeatures, kLabels, true); }),
                 "label_offsets is empty: every row needs labels"));
  glide::SparseBatch bad = b;
  bad.values[3] = std::nanf("");
  CHECK(contains(error_of([&] { glide::check_batch(bad.view(), kFeatures, kLabels, false); }),
                 "is not finite"));
}

TEST_CASE("quantize: int8 and bf16 rank like the fp32 model; int8 cannot train; save/load") {
  const glide::SparseBatch test = planted(100, 3);
  for (const std::string precision : {"int8", "bf16"}) {
    CAPTURE(precision);
    glide::Model m = trained();
    CHECK(m.precision() == "fp32");
    const auto before = m.predict(test.view(), 1);
    m.quantize(precision);
    CHECK(m.precision() == precision);
    const auto after = m.predict(test.view(), 1);
    std::size_t same = 0;
    for (std::size_t i = 0; i < before.size(); ++i) {
      same += before[i].labels == after[i].labels;
      CHECK(after[i].scores[0] == doctest::Approx(before[i].scores[0]).epsilon(0.05));
    }
    CHECK(same >= 95);
    CHECK(contains(error_of([&] { m.quantize("int8"); }), "already quantized"));

    const auto path = std::filesystem::temp_directory_path() /
                      ("glide_quantize_test_" + std::to_string(std::random_device{}()) + ".glide");
    m.save(path.string());
    const glide::Model loaded = glide::Model::load(path.string());
    std::filesystem::remove(path);
    CHECK(loaded.precision() == precision);
    const auto reloaded = loaded.predict(test.view(), 1);
    for (std::size_t i = 0; i < after.size(); ++i) CHECK(reloaded[i].labels == after[i].labels);
  }
  glide::Model m = trained();
  CHECK(contains(error_of([&] { m.quantize("int4"); }), "must be int8 or bf16, got 'int4'"));
  CHECK(contains(error_of([&] { m.quantize("int8", "column"); }), "column"));
  CHECK(m.precision() == "fp32");
  m.quantize("int8", "tensor");
  glide::TrainOptions o = m.train_options();
  o.epochs = 0.1;
  CHECK(contains(error_of([&] { m.train(planted(50, 4).view(), o); }), "int8-quantized"));
}

TEST_CASE("default_config_json lists the defaults a config file starts from") {
  const std::string json = glide::default_config_json();
  CHECK(contains(json, "\"num_features\": 0"));
  CHECK(contains(json, "\"lr\": 0.0,"));  // the network's default: 3e-4 beside the wide layer
  CHECK(contains(json, "\"hidden\": ["));
  // The dimensions are what a config must add.
  CHECK(contains(error_of([&] { glide::Model::create_from_json(json); }), "num_features"));
}

}  // namespace api_quantize_test
