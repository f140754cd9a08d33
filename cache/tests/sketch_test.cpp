// Wide layers looked up in a CountSketch of their activations (CacheOptions::sketch): cosines are
// kept on average, an input on its own row is still certain, the sketch survives the model file,
// and a damaged sketch is a named error. Also the shadow-check chance (cached_predictor.h).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "cache/cache_file.h"
#include "cache/cached_predictor.h"
#include "common/error.h"

using namespace glide;
using namespace glide::cache;

namespace {

// Sparse non-negative vectors, like ReLU activations: about a third of the entries are zero.
std::vector<float> relu_like(std::uint32_t dim, std::mt19937& g) {
  std::normal_distribution<float> n;
  std::vector<float> v(dim);
  for (auto& x : v) x = std::max(0.0f, n(g) + 0.5f);
  return v;
}

float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return static_cast<float>(ab / std::sqrt(aa * bb));
}

}  // namespace

TEST_CASE("sketch: unit vectors of the sketch width whose cosines estimate the layer's") {
  const std::uint32_t dim = 1024, sketch = 128;
  CacheModel m(0, dim, {}, CacheForm::kCentroid, sketch);
  REQUIRE(m.sketch() == sketch);
  CHECK(m.row_dim() == sketch);
  CHECK(CacheModel(0, 64, {}, CacheForm::kCentroid, sketch).sketch() == 0);  // narrow: none
  std::mt19937 g(5);
  double err = 0, bias = 0, worst = 0;
  const int pairs = 200;
  for (int i = 0; i < pairs; ++i) {
    auto a = relu_like(dim, g), b = relu_like(dim, g);
    for (std::uint32_t j = 0; j < dim / 2; ++j) b[j] = a[j];  // cosines spread over 0.8-0.95
    std::vector<float> sa(sketch), sb(sketch);
    m.project(a.data(), sa.data());
    m.project(b.data(), sb.data());
    double norm = 0;
    for (float v : sa) norm += double(v) * v;
    CHECK(norm == doctest::Approx(1).epsilon(1e-5));
    double d = 0;
    for (std::uint32_t j = 0; j < sketch; ++j) d += double(sa[j]) * sb[j];
    err += std::abs(d - cosine(a, b));
    bias += d - cosine(a, b);
    worst = std::max(worst, std::abs(d - cosine(a, b)));
  }
  // A 128-wide CountSketch: errors of order sqrt(2 / 128) x (1 - cos^2), a few hundredths, a
  // little above the true cosine on average (the norms are estimated too). Were the buckets
  // not spread, every sketch would be one direction and the errors near 1 - cos (0.05-0.2).
  MESSAGE("sketch cosine error: mean " << err / pairs << ", bias " << bias / pairs << ", worst "
                                       << worst);
  CHECK(err / pairs < 0.06);
  CHECK(std::abs(bias / pairs) < 0.05);
  CHECK(worst < 0.2);
}

TEST_CASE("sketch: an input on its own row is certain; the sketch survives the model file") {
  CacheOptions o;
  o.hot_labels = 8;
  o.min_count = 0.5;
  o.hot_refresh_every = 1 << 30;
  o.sketch = 64;
  const std::uint32_t dim = 512;
  CacheTrainer t(0, dim, o);
  std::mt19937 g(9);
  const auto a = relu_like(dim, g), b = relu_like(dim, g);
  t.add(a.data(), 3);
  t.add(b.data(), 4);
  REQUIRE(t.current().sketch() == 64);
  const auto snap = t.snapshot();
  engine::Prediction p;
  bool hot = false;
  std::vector<float> scratch;
  CHECK(snap->lookup(a.data(), 1, p, &hot, scratch) > 0.99f);
  CHECK(p.labels == std::vector<std::uint32_t>{3});
  CHECK(snap->bytes() < 2 * (64 + 4 + 4) + 64);  // rows of the sketch's width, not the layer's

  engine::NetworkConfig net;
  net.num_features = 100;
  net.num_labels = 10;
  net.hidden = {dim};
  const auto dir = std::filesystem::temp_directory_path() / "glide_cache_sketch_tests";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "sketch.glide").string();
  CacheState st = t.state();
  st.threshold = 0.5;
  {
    engine::ModelFileWriter w(path);
    CacheSectionWriter sections;
    sections.add(w, {{0, st}});
    w.commit();
  }
  const CacheStates back = read_caches(path, net);
  const CacheModel& m = *back.at(0).model;
  CHECK(m.sketch() == 64);
  std::vector<float> s1, s2;
  engine::Prediction p1, p2;
  bool h1 = false, h2 = false;
  for (const auto* x : {&a, &b}) {
    CHECK(m.lookup(x->data(), 2, p1, &h1, s1) == st.model->lookup(x->data(), 2, p2, &h2, s2));
    CHECK(p1.labels == p2.labels);
  }

  // A sketched cache tuned on the best cosine keeps both (it cannot be written as format 1).
  {
    auto cosine = std::make_shared<CacheModel>(*st.model);
    cosine->set_confidence(Confidence::kCosine);
    CacheState cs = st;
    cs.model = cosine;
    engine::ModelFileWriter w(path);
    CacheSectionWriter sections;
    sections.add(w, {{0, cs}});
    w.commit();
  }
  const CacheStates cosine_back = read_caches(path, net);
  CHECK(cosine_back.at(0).model->sketch() == 64);
  CHECK(cosine_back.at(0).model->confidence() == Confidence::kCosine);

  // A sketch as wide as the layer, or on a linear cache, is refused by name.
  auto write_meta = [&](const std::string& meta) {
    const std::vector<std::uint32_t> hot{3, 4};
    const std::vector<float> w(3 * 64, 0.1f), bias(3, 0.0f);
    {
      engine::ModelFileWriter mw(path);
      mw.add_json("cache/0/meta", meta);
      mw.add("cache/0/hot", engine::DType::kU32, {2}, std::as_bytes(std::span(hot)));
      mw.add("cache/0/weight", engine::DType::kF32, {3, 64}, std::as_bytes(std::span(w)));
      mw.add("cache/0/bias", engine::DType::kF32, {3}, std::as_bytes(std::span(bias)));
      mw.add("cache/0/labels", engine::DType::kU32, {0}, {});
      mw.add("cache/0/counts", engine::DType::kF32, {0}, {});
      mw.commit();
    }
    try {
      read_caches(path, net);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string head =
      R"({"cache_format":2,"layer":0,"dim":512,"hot":2,"threshold":0.5,"examples":5,"counts":0,)";
  CHECK(write_meta(head + R"("form":"centroid","confidence":"ratio","sketch":64})").empty());
  CHECK(write_meta(head + R"("form":"centroid","confidence":"ratio","sketch":512})")
            .find("a sketch of 512 needs a centroid cache on a wider layer") != std::string::npos);
  CHECK(write_meta(head + R"("form":"linear","confidence":"ratio","sketch":64})")
            .find("needs a centroid cache") != std::string::npos);
  CHECK(write_meta(head + R"("form":"centroid","confidence":"ratio","sketch":32})")
            .find("section 'cache/0/weight' has shape") != std::string::npos);
}

TEST_CASE("shadow checks: twice the base rate at the threshold, a quarter for certain hits") {
  CHECK(shadow_chance(0.05, 0.4, 0.4) == doctest::Approx(0.10));
  CHECK(shadow_chance(0.05, 0.7, 0.4) == doctest::Approx(0.05));  // halfway to 1: the base
  CHECK(shadow_chance(0.05, 1.0, 0.4) == doctest::Approx(0.0125));
  CHECK(shadow_chance(0.5, 0.4, 0.4) == doctest::Approx(1.0));  // never above 1
  CHECK(shadow_chance(0.0, 0.4, 0.4) == 0.0);                   // off stays off
  // Falls as the confidence rises.
  double last = 1;
  for (double c = 0.3; c <= 1.0; c += 0.05) {
    const double p = shadow_chance(0.05, c, 0.3);
    CHECK(p <= last);
    last = p;
  }
}
