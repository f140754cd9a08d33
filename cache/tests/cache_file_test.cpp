// Learned caches in the model file and trained alongside the model: save -> load gives identical
// lookups, damaged cache sections give named errors, caches trained during fit() and saved hit
// right after loading (with the agreement target), the threshold calibration's direction.
#include <doctest/doctest.h>
#include <tbb/global_control.h>
#include "tests/error_of.h"

#include <filesystem>

#include "cache/cache_file.h"
#include "cache/cached_predictor.h"
#include "cache/training_caches.h"
#include "cache/workload.h"
#include "common/error.h"
#include "data/synth_xc.h"
#include "engine/checkpoint.h"
#include "engine/fit.h"

using namespace glide;
using namespace glide::cache;

namespace {

std::string temp_file(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "glide_cache_file_tests";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

engine::Config small_config(const data::TrainTest& d) {
  engine::Config c;
  c.net.num_features = d.train.num_features;
  c.net.num_labels = d.train.num_labels;
  c.net.hidden = {64, 32};
  c.net.sampling = engine::OutputSampling::kDense;
  c.train.batch = 64;
  c.train.lr = 5e-3;
  c.train.lr_schedule = engine::LrSchedule::kConstant;  // the served model these bounds were set on
  c.train.epochs = 3;
  // Caches answer from hidden activations alone: on a model with a wide layer they agree less
  // with the full model (docs/caches.md); these bounds are about the cache file.
  c.net.wide = engine::WideMode::kOff;
  c.train.output_lr = 0.02;  // an output lr the network alone trains well at
  c.train.output_eps = c.train.eps;
  return c;
}

data::TrainTest small_data() {
  data::XcSynthConfig sc = data::xc_preset("tiny");
  sc.points = 4000;
  sc.labels = 2000;
  return data::synth_xc_split(sc, 3000);
}

void save_with_caches(const std::string& path, const engine::Network& net, const engine::Config& c,
                      const CacheStates& caches) {
  CacheSectionWriter sections;
  engine::SaveOptions so;
  so.optimizer_state = false;
  so.extra_sections = [&](engine::ModelFileWriter& w) { sections.add(w, caches); };
  engine::save_model(path, net, c, {}, so);
}

using glide::testing::error_of;

}  // namespace

TEST_CASE("caches trained during fit() and saved start warm after loading, within the target") {
  // One thread, so the run (and its hit count) is the same every time.
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  const data::TrainTest d = small_data();
  const engine::Config c = small_config(d);
  auto net = std::make_unique<engine::Network>(c.net);
  engine::Trainer trainer(*net, c.train, nullptr);
  TrainingCacheOptions to;
  to.layers = {0, 1};
  to.cache.hot_labels = 256;
  to.rows_per_batch = 16;
  to.time_budget = 1;  // every batch (the default budget skips batches by time)
  TrainingCaches caches(*net, to);
  engine::FitOptions fo;
  fo.on_batch = [&](std::span<const data::SparseView> in) { caches.on_batch(in); };
  engine::fit(*net, trainer, d.train, c.train, fo);
  const CacheStates states = caches.states();
  REQUIRE(states.size() == 2);
  for (const auto& r : caches.report())
    MESSAGE("layer " << r.layer << ": " << r.examples << " examples, threshold " << r.threshold
                     << ", " << r.agreed << "/" << r.hits << " of " << r.records);
  CHECK(caches.rows() > 0);
  {
    // No time budget at all: only the first batch trains the caches.
    engine::Network other(c.net);
    engine::Trainer t2(other, c.train, nullptr);
    TrainingCacheOptions none = to;
    none.time_budget = 0;
    TrainingCaches starved(other, none);
    engine::FitOptions f2;
    f2.on_batch = [&](std::span<const data::SparseView> in) { starved.on_batch(in); };
    engine::Config short_run = c;
    short_run.train.epochs = 0.2;
    engine::fit(other, t2, d.train, short_run.train, f2);
    CHECK(starved.rows() > 0);
    CHECK(starved.rows() <= to.rows_per_batch);
  }

  const std::string path = temp_file("trained.glide");
  save_with_caches(path, *net, c, states);
  auto model = std::make_shared<const engine::InferenceModel>(path, false);
  const CacheStates loaded = read_caches(path, model->config().net);
  REQUIRE(loaded.size() == 2);
  CachedOptions o;
  o.background = false;
  o.shadow_fraction = 0;
  // This tiny model's layers cost about what a lookup does, so skipping would (rightly) turn the
  // caches off; this test is about what the file holds.
  o.skip_unprofitable = false;
  CachedPredictor cp(model->shared_predictor(engine::EvalMode::kExact), o, loaded);
  CHECK(cp.layers() == std::vector<std::uint32_t>{0, 1});  // the file's layers by default
  // Held-out requests (test points, never trained on), before the caches learn anything new.
  std::vector<engine::Prediction> full, out;
  std::vector<data::SparseView> xs;
  for (std::size_t i = 0; i < d.test.num_points(); ++i) xs.push_back(d.test.features(i));
  model->predict(xs, 1, engine::EvalMode::kExact, full);
  std::vector<int> cached;
  std::size_t hits = 0, agree = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    cp.predict(std::span(&xs[i], 1), 1, out);
    cached = engine::exit_layers(out);
    if (cached[0] < 0) continue;
    ++hits;
    agree += out[0].labels[0] == full[i].labels[0];
  }
  MESSAGE("warm from the file: " << hits << " hits of " << xs.size() << ", " << agree << " agree");
  CHECK(hits > xs.size() / 50);
  CHECK(agree >= 0.97 * hits);
}

TEST_CASE("save -> load gives identical lookups, thresholds and counts") {
  tbb::global_control two(tbb::global_control::max_allowed_parallelism, 2);
  const data::TrainTest d = small_data();
  const engine::Config c = small_config(d);
  auto net = std::make_unique<engine::Network>(c.net);
  engine::Trainer trainer(*net, c.train, nullptr);
  engine::Config c1 = c;
  c1.train.epochs = 1;
  engine::fit(*net, trainer, d.train, c1.train, {});
  auto model = std::make_shared<const engine::InferenceModel>(std::move(net), c, false);
  CachedOptions o;
  o.layers = {0, 1};
  o.background = false;
  o.cache.hot_labels = 64;
  CachedPredictor cp(model->shared_predictor(engine::EvalMode::kExact), o);
  Workload w(d.test.num_points(), {.skew = 1.1, .drift = 0, .seed = 8});
  std::vector<engine::Prediction> out;
  std::vector<int> cached;
  for (int i = 0; i < 3000; ++i) {
    const data::SparseView x = d.test.features(w.next());
    cp.predict(std::span(&x, 1), 5, out);
    cached = engine::exit_layers(out);
    if (i % 16 == 0) cp.drain();
  }
  const CacheStates saved = cp.states();
  REQUIRE(saved.size() == 2);
  const std::string path = temp_file("roundtrip.glide");
  save_with_caches(path, model->network(), c, saved);
  const CacheStates loaded = read_caches(path, c.net);
  REQUIRE(loaded.size() == 2);
  for (const auto& [layer, st] : saved) {
    const CacheState& back = loaded.at(layer);
    CHECK(back.threshold == st.threshold);
    CHECK(back.counts == st.counts);
    CHECK(back.model->hot() == st.model->hot());
    CHECK(back.model->examples == st.model->examples);
    CHECK(back.model->confidence() == Confidence::kRatio);  // the default, kept
    CHECK(back.model->bias() == st.model->bias());
    std::vector<float> s1, s2;
    engine::HiddenActivations acts;
    for (std::size_t i = 0; i < 200; ++i) {
      const data::SparseView x = d.test.features(i);
      model->network().forward_hidden(std::span(&x, 1), acts, engine::kernels());
      engine::Prediction a, b;
      bool hot_a = false, hot_b = false;
      const float ca = st.model->lookup(acts.row(layer, 0), 5, a, &hot_a, s1);
      const float cb = back.model->lookup(acts.row(layer, 0), 5, b, &hot_b, s2);
      CHECK(ca == cb);
      CHECK(hot_a == hot_b);
      if (hot_a) {
        CHECK(a.labels == b.labels);
        CHECK(a.scores == b.scores);
      }
    }
  }
  // A predictor warm from the file continues training from the saved state.
  CachedPredictor again(model->shared_predictor(engine::EvalMode::kExact), o, loaded);
  CHECK(again.stats()[0].examples == saved.at(0).model->examples);
  CHECK(again.threshold(1) == doctest::Approx(saved.at(1).threshold));
  // A cache tuned on the best cosine (format 1) reads back as such; its threshold is not taken
  // for a ratio-test one: a ratio-test predictor restarts it, a cosine one keeps it.
  CacheStates cosine = saved;
  for (auto& [layer, st] : cosine) {
    auto m = std::make_shared<CacheModel>(*st.model);
    m->set_confidence(Confidence::kCosine);
    st.model = m;
    st.threshold = 0.9;
  }
  const std::string old_path = temp_file("cosine.glide");
  save_with_caches(old_path, model->network(), c, cosine);
  const CacheStates old_loaded = read_caches(old_path, c.net);
  CHECK(old_loaded.at(0).model->confidence() == Confidence::kCosine);
  CachedPredictor ratio(model->shared_predictor(engine::EvalMode::kExact), o, old_loaded);
  CHECK(ratio.threshold(0) > 0.999);
  CHECK(ratio.cache(0)->confidence() == Confidence::kRatio);
  CachedOptions oc = o;
  oc.cache.confidence = Confidence::kCosine;
  CachedPredictor same(model->shared_predictor(engine::EvalMode::kExact), oc, old_loaded);
  CHECK(same.threshold(0) == doctest::Approx(0.9));
  CHECK(same.cache(0)->confidence() == Confidence::kCosine);
}

TEST_CASE("damaged or mismatched cache sections give named errors") {
  const data::TrainTest d = small_data();
  const engine::Config c = small_config(d);
  const engine::Network net(c.net);
  std::vector<std::uint32_t> hot{3, 7, 9};
  std::vector<float> w(4 * 32, 0.1f), b(4, 0.0f);
  auto state = [&](std::vector<std::uint32_t> h) {
    CacheState st;
    std::vector<float> ww(w.begin(), w.begin() + (h.size() + 1) * 32);
    std::vector<float> bb(h.size() + 1, 0.0f);
    st.model = std::make_shared<CacheModel>(
        CacheModel::from_parameters(1, 32, h, ww, bb, CacheForm::kCentroid, 0));
    st.counts = {{3, 2.0f}};
    return st;
  };
  const std::string path = temp_file("damaged.glide");
  save_with_caches(path, net, c, {{1, state(hot)}});
  CHECK(read_caches(path, c.net).at(1).model->hot() == hot);
  // Another model shape: layer 1 is 16 wide there.
  engine::NetworkConfig narrow = c.net;
  narrow.hidden = {64, 16};
  CHECK(error_of([&] { read_caches(path, narrow); }).find("section 'cache/1/meta'") !=
        std::string::npos);
  narrow.hidden = {64};
  CHECK(error_of([&] { read_caches(path, narrow); }).find("has 1 hidden layers") !=
        std::string::npos);
  // Hand-written damaged sections.
  auto write = [&](const std::string& meta, const std::vector<std::uint32_t>& h,
                   std::uint64_t rows) {
    engine::ModelFileWriter mw(path);
    mw.add_json("cache/1/meta", meta);
    mw.add("cache/1/hot", engine::DType::kU32, {h.size()}, std::as_bytes(std::span(h)));
    mw.add("cache/1/weight", engine::DType::kF32, {rows, 32},
           std::as_bytes(std::span(w).first(rows * 32)));
    mw.add("cache/1/bias", engine::DType::kF32, {rows}, std::as_bytes(std::span(b).first(rows)));
    mw.add("cache/1/labels", engine::DType::kU32, {0}, {});
    mw.add("cache/1/counts", engine::DType::kF32, {0}, {});
    mw.commit();
    return error_of([&] { read_caches(path, c.net); });
  };
  const std::string good =
      R"({"cache_format":1,"layer":1,"dim":32,"hot":3,"threshold":0.9,"examples":5,"counts":0})";
  CHECK(write(good, hot, 4).empty());
  CHECK(write(R"({"cache_format":3,"layer":1,"dim":32,"hot":3,"threshold":0.9,"examples":5,)"
              R"("counts":0})",
              hot, 4)
            .find("cache format 3 is not supported") != std::string::npos);
  // Version 2 must say which confidence its threshold was tuned on.
  CHECK(write(R"({"cache_format":2,"layer":1,"dim":32,"hot":3,"threshold":0.9,"examples":5,)"
              R"("counts":0,"form":"centroid"})",
              hot, 4)
            .find("'cache/1/meta': malformed") != std::string::npos);
  CHECK(write(R"({"cache_format":2,"layer":1,"dim":32,"hot":3,"threshold":0.9,"examples":5,)"
              R"("counts":0,"form":"centroid","confidence":"best"})",
              hot, 4)
            .find("unknown cache confidence 'best'") != std::string::npos);
  CHECK(write(R"({"cache_format":1,"layer":1})", hot, 4).find("'cache/1/meta': malformed") !=
        std::string::npos);
  CHECK(write(good, {3, 9, 3}, 4).find("section 'cache/1/hot'") != std::string::npos);
  CHECK(write(good, hot, 3).find("section 'cache/1/weight' has shape") != std::string::npos);
  CHECK(write(R"({"cache_format":1,"layer":1,"dim":32,"hot":3,"threshold":1.5,"examples":5,)"
              R"("counts":0})",
              hot, 4)
            .find("threshold is not in [0, 1]") != std::string::npos);
}

TEST_CASE("threshold calibration: the lowest confidence whose hits meet the target") {
  std::vector<CalibrationRecord> r;
  // Confidence 0.99..: always right; 0.9..0.99: 1 in 10 wrong; below 0.9: half wrong.
  for (int i = 0; i < 500; ++i) r.push_back({0.991f + 0.008f * i / 500, true, 1});
  for (int i = 0; i < 500; ++i) r.push_back({0.9f + 0.09f * i / 500, i % 10 != 0, 1});
  for (int i = 0; i < 500; ++i) r.push_back({0.6f + 0.3f * i / 500, i % 2 == 0, 1});
  const double t = calibrate_threshold(r, 0.99, 64);
  CHECK(t > 0.9);
  CHECK(t < 0.995);
  CHECK(calibrate_threshold(r, 0.8, 64) < t);              // a looser target: a lower threshold
  CHECK(calibrate_threshold({}, 0.99, 64) < 0);            // nothing measured: no threshold
  CHECK(calibrate_threshold(r, 0.99, 64, 0.5, 0.5) == t);  // half the allowed: the default
  // Aiming at a smaller share of the allowed disagreement: a higher threshold. 1000 records from
  // 0.95 up are right; below, 1 in 150 (0.67%) is wrong. Half of 1% takes all of those (the
  // cumulative rate stays under 0.5%); a quarter stops after the second wrong one, where the
  // third (with the pseudo-disagreement) would pass 0.25% (0.95 down to ~0.80).
  std::vector<CalibrationRecord> s;
  for (int i = 0; i < 1000; ++i) s.push_back({0.95f + 0.05f * i / 1000, true, 1});
  for (int i = 0; i < 1000; ++i) s.push_back({0.5f + 0.45f * i / 1000, i % 150 != 75, 1});
  const double half = calibrate_threshold(s, 0.99, 64, 0.0, 0.5);
  const double quarter = calibrate_threshold(s, 0.99, 64, 0.0, 0.25);
  CHECK(half < 0.52);
  CHECK(quarter > 0.75);
  CHECK(quarter < 0.85);
  // The lowest threshold: a confidence whose every record agrees calibrates down to it.
  std::vector<CalibrationRecord> all(300, {0.2f, true, 1});
  CHECK(calibrate_threshold(all, 0.99, 64, 0.0) == doctest::Approx(0.2));
  CHECK(calibrate_threshold(all, 0.99, 64, 0.5) == doctest::Approx(0.5));
  // Enough records but none good enough: (almost) never hit.
  std::vector<CalibrationRecord> bad(300, {0.9f, false, 1});
  CHECK(calibrate_threshold(bad, 0.99, 64) > 0.999);
  // A shadow-checked hit stands for many: one heavy disagreement outweighs light agreements.
  std::vector<CalibrationRecord> w(300, {0.8f, true, 1});
  w.push_back({0.95f, false, 20});
  CHECK(calibrate_threshold(w, 0.99, 64) > 0.95);
}
