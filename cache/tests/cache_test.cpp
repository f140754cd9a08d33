// Learned caches on a small trained model: hits on skewed traffic within the agreement target,
// mostly misses on uniform traffic, exact answers (hits as the cache said, misses as the full
// model), the threshold tuner's direction, the workload generator, the LRU baseline, and
// concurrent serving while the background thread trains (also run under TSan by hand).
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <cmath>
#include <map>
#include <thread>

#include "cache/cached_predictor.h"
#include "cache/lru_cache.h"
#include "cache/workload.h"
#include "common/error.h"
#include "data/synth_xc.h"
#include "engine/fit.h"
#include "engine/index_predictor.h"
#include "engine/output_index.h"

using namespace glide;
using namespace glide::cache;

namespace {

struct Trained {
  data::TrainTest data;
  std::shared_ptr<const engine::InferenceModel> model;
  std::vector<engine::Prediction> full;  // the full model's top-5 of every test point
};

const Trained& trained() {
  static const Trained t = [] {
    Trained t;
    data::XcSynthConfig sc = data::xc_preset("tiny");
    sc.points = 4000;
    sc.labels = 2000;
    t.data = data::synth_xc_split(sc, 3000);
    engine::Config c;
    c.net.num_features = t.data.train.num_features;
    c.net.num_labels = t.data.train.num_labels;
    c.net.hidden = {64, 32};
    c.net.sampling = engine::OutputSampling::kDense;
    c.net.wide = engine::WideMode::kOff;  // the bounds and the rows scored are the output layer's
    c.train.output_lr = 0.02;             // an output lr the network alone trains well at
    c.train.output_eps = c.train.eps;
    c.train.batch = 64;
    c.train.lr = 5e-3;
    // The served model these bounds were set on.
    c.train.lr_schedule = engine::LrSchedule::kConstant;
    c.train.epochs = 3;
    auto net = std::make_unique<engine::Network>(c.net);
    engine::Trainer trainer(*net, c.train, nullptr);
    engine::fit(*net, trainer, t.data.train, c.train, {});
    t.model = std::make_shared<const engine::InferenceModel>(std::move(net), c, false);
    std::vector<data::SparseView> xs;
    for (std::size_t i = 0; i < t.data.test.num_points(); ++i)
      xs.push_back(t.data.test.features(i));
    t.model->predict(xs, 5, engine::EvalMode::kExact, t.full);
    return t;
  }();
  return t;
}

CachedOptions test_options() {
  CachedOptions o;
  o.layers = {0, 1};
  o.background = false;
  o.cache.hot_labels = 128;
  o.cache.min_examples = 256;
  // Both depend on measured time; off, these tests give the same hits every run.
  o.publish_after_ms = 0;
  o.skip_unprofitable = false;
  return o;
}

// Labels exactly, scores to float rounding (the softmax normaliser is summed per thread block, so
// batch mates can move the last bits; the server tests compare the same way).
bool close(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i] - b[i]) > 1e-5f * std::max(std::abs(a[i]), std::abs(b[i])) + 1e-30f)
      return false;
  return true;
}

struct Run {
  std::size_t requests = 0, hits = 0, agree = 0, exact_misses = 0, misses = 0;
};

// `n` requests of the workload over the first `points` test points in batches of 4, training
// between batches; when `check`, compares every answer with the full model.
Run serve(CachedPredictor& cp, Workload& w, std::size_t n, std::size_t points) {
  const Trained& t = trained();
  Run r;
  std::vector<data::SparseView> xs;
  std::vector<std::size_t> ids;
  std::vector<engine::Prediction> out;
  std::vector<int> cached;
  for (std::size_t done = 0; done < n; done += 4) {
    xs.clear();
    ids.clear();
    for (int j = 0; j < 4; ++j) {
      ids.push_back(w.next() % points);
      xs.push_back(t.data.test.features(ids.back()));
    }
    cp.predict(xs, 5, out);
    cached = engine::exit_layers(out);
    for (std::size_t j = 0; j < xs.size(); ++j) {
      ++r.requests;
      const engine::Prediction& full = t.full[ids[j]];
      if (cached[j] >= 0) {
        ++r.hits;
        r.agree += out[j].labels[0] == full.labels[0];
      } else {
        ++r.misses;
        r.exact_misses += out[j].labels == full.labels && close(out[j].scores, full.scores);
      }
    }
    cp.drain();
  }
  return r;
}

}  // namespace

TEST_CASE("skewed traffic: caches hit often and agree with the full model on held-out requests") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);  // deterministic
  const Trained& t = trained();
  CachedPredictor cp(t.model->shared_predictor(engine::EvalMode::kExact), test_options());
  Workload w(t.data.test.num_points(), {.skew = 1.0, .drift = 0, .seed = 3});
  const Run warm = serve(cp, w, 12000, t.data.test.num_points());
  const Run held = serve(cp, w, 6000, t.data.test.num_points());  // later requests: not trained on
  const double hit_rate = double(held.hits) / held.requests;
  const double agreement = double(held.agree) / std::max<std::size_t>(1, held.hits);
  MESSAGE("warm-up hit rate " << double(warm.hits) / warm.requests << ", held-out hit rate "
                              << hit_rate << ", agreement " << agreement);
  for (const auto& s : cp.stats())
    MESSAGE("layer " << s.layer << ": hits " << s.hits << " misses " << s.misses << " threshold "
                     << s.threshold << " shadow " << s.shadow_agreed << "/" << s.shadow_checks
                     << " hot " << s.hot_labels);
  CHECK(hit_rate > 0.2);
  CHECK(agreement >= 0.99);
  CHECK(held.exact_misses == held.misses);  // a miss is exactly the full model's answer
}

TEST_CASE("uniform traffic: caches mostly miss, and misses stay exact") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);  // deterministic
  const Trained& t = trained();
  CachedPredictor cp(t.model->shared_predictor(engine::EvalMode::kExact), test_options());
  Workload w(t.data.test.num_points(), {.skew = 0, .drift = 0, .seed = 4});
  const Run r = serve(cp, w, 6000, t.data.test.num_points());
  const double hit_rate = double(r.hits) / r.requests;
  MESSAGE("uniform hit rate " << hit_rate);
  CHECK(hit_rate < 0.5);
  CHECK(r.exact_misses == r.misses);
  // A miss costs little: lookups are a small share of the layers they try to skip.
  double lookup = 0;
  for (const auto& s : cp.stats()) lookup += s.lookup_seconds;
  MESSAGE("lookup seconds " << lookup);
}

TEST_CASE("caches that cost more than they save are skipped but still probed; misses stay exact") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  const Trained& t = trained();
  CachedOptions o = test_options();
  o.skip_unprofitable = true;
  // A target so strict the thresholds stay high: the lookups are nearly all cost.
  o.target = 0.99999;
  CachedPredictor cp(t.model->shared_predictor(engine::EvalMode::kExact), o);
  Workload w(t.data.test.num_points(), {.skew = 0, .drift = 0, .seed = 4});
  const Run r = serve(cp, w, 6000, t.data.test.num_points());
  CHECK(r.exact_misses == r.misses);
  std::uint64_t skipped = 0;
  for (const auto& s : cp.stats()) {
    MESSAGE("layer " << s.layer << ": hits " << s.hits << " misses " << s.misses << " skipped "
                     << s.skipped << " saving " << s.gain_us << " us/lookup");
    skipped += s.skipped;
    if (s.skipped == 0) continue;
    CHECK(s.gain_us < 0);
    CHECK(s.skipped < s.misses);  // probes still look up
  }
  CHECK(skipped > 0);
  // Off: every request is looked up.
  CachedPredictor all(t.model->shared_predictor(engine::EvalMode::kExact), test_options());
  Workload w2(t.data.test.num_points(), {.skew = 0, .drift = 0, .seed = 4});
  serve(all, w2, 2000, t.data.test.num_points());
  for (const auto& s : all.stats()) CHECK(s.skipped == 0);
}

TEST_CASE("a version goes out publish_after_ms after the last even with few examples") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  const Trained& t = trained();
  auto versions = [&](double after_ms) {
    CachedOptions o = test_options();
    o.cache.publish_every = 1 << 30;  // never by count
    o.publish_after_ms = after_ms;
    CachedPredictor cp(t.model->shared_predictor(engine::EvalMode::kExact), o);
    Workload w(t.data.test.num_points(), {.skew = 1.0, .drift = 0, .seed = 9});
    serve(cp, w, 40, t.data.test.num_points());  // 10 batches, drained after each
    const auto c = cp.cache(0);
    return c ? c->version : 0;
  };
  CHECK(versions(1e-6) >= 10);  // one per drained batch
  CHECK(versions(0) == 0);      // off: only every publish_every examples
}

TEST_CASE("a hit returns exactly the labels the cache predicted") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);  // deterministic
  const Trained& t = trained();
  CachedOptions o = test_options();
  o.shadow_fraction = 0;
  CachedPredictor cp(t.model->shared_predictor(engine::EvalMode::kExact), o);
  Workload w(t.data.test.num_points(), {.skew = 1.2, .drift = 0, .seed = 5});
  serve(cp, w, 8000, t.data.test.num_points());
  std::size_t hits = 0;
  std::vector<engine::Prediction> out;
  std::vector<int> cached;
  std::vector<float> scratch;
  for (std::size_t i = 0; i < 300; ++i) {
    const data::SparseView x = t.data.test.features(w.next());
    cp.predict(std::span(&x, 1), 5, out);
    cached = engine::exit_layers(out);
    if (cached[0] < 0) continue;
    ++hits;
    // Recompute the hidden layer and look the cache up by hand.
    engine::HiddenActivations acts;
    t.model->network().forward_hidden(std::span(&x, 1), acts, engine::kernels());
    const std::size_t slot = cached[0] == 0 ? 0 : 1;
    const auto cache = cp.cache(slot);
    engine::Prediction expect;
    bool hot = false;
    const float conf = cache->lookup(acts.row(cached[0], 0), 5, expect, &hot, scratch);
    CHECK(hot);
    CHECK(conf >= static_cast<float>(cp.threshold(slot)));
    CHECK(out[0].labels == expect.labels);
  }
  CHECK(hits > 0);
}

TEST_CASE("the threshold rises when agreement drops and falls slowly when it is high") {
  ThresholdTuner tuner(0.99, 0.9);
  const double t0 = tuner.threshold();
  tuner.observe(false);
  const double t1 = tuner.threshold();
  CHECK(t1 > t0);
  tuner.observe(true);
  const double t2 = tuner.threshold();
  CHECK(t2 < t1);
  CHECK(t1 - t2 < (t1 - t0) / 20);  // down much more slowly than up
  // 10% disagreement drives the threshold up; 0.1% lets it come down.
  ThresholdTuner bad(0.99, 0.9), good(0.99, 0.9);
  for (int i = 0; i < 1000; ++i) {
    bad.observe(i % 10 != 0);
    good.observe(i % 1000 != 999);
  }
  CHECK(bad.threshold() > 0.999);
  CHECK(good.threshold() < 0.9);
  CHECK(bad.checks() == 1000);
  CHECK(bad.agreed() == 900);
}

TEST_CASE("workload: Zipf skew concentrates requests, uniform does not, drift moves the hot set") {
  auto top_share = [](Workload w, std::size_t n) {
    std::map<std::size_t, std::size_t> c;
    for (std::size_t i = 0; i < n; ++i) ++c[w.next()];
    std::vector<std::size_t> v;
    for (auto [p, k] : c) v.push_back(k);
    std::sort(v.rbegin(), v.rend());
    std::size_t top = 0;
    for (std::size_t i = 0; i < std::min<std::size_t>(10, v.size()); ++i) top += v[i];
    return double(top) / n;
  };
  const double zipf = top_share(Workload(1000, {.skew = 1.0}), 20000);
  const double uni = top_share(Workload(1000, {.skew = 0}), 20000);
  CHECK(zipf > 0.3);
  CHECK(uni < 0.05);
  Workload drifting(1000, {.skew = 1.2, .drift = 10, .seed = 2});
  std::map<std::size_t, std::size_t> early, late;
  for (int i = 0; i < 2000; ++i) ++early[drifting.next()];
  for (int i = 0; i < 20000; ++i) drifting.next();
  for (int i = 0; i < 2000; ++i) ++late[drifting.next()];
  auto top = [](const std::map<std::size_t, std::size_t>& m) {
    return std::max_element(m.begin(), m.end(), [](auto a, auto b) { return a.second < b.second; })
        ->first;
  };
  CHECK(top(early) != top(late));
}

TEST_CASE("LRU baseline: exact inputs hit, others miss, the byte budget holds") {
  const Trained& t = trained();
  const auto& ds = t.data.test;
  const std::size_t budget = LruCache::entry_bytes(ds.features(0), t.full[0]) * 20;
  LruCache lru(budget);
  engine::Prediction p;
  CHECK_FALSE(lru.get(ds.features(0), 5, p));
  lru.put(ds.features(0), 5, t.full[0]);
  REQUIRE(lru.get(ds.features(0), 5, p));
  CHECK(p.labels == t.full[0].labels);
  CHECK_FALSE(lru.get(ds.features(0), 3, p));  // another k is another key
  CHECK_FALSE(lru.get(ds.features(1), 5, p));
  for (std::size_t i = 1; i < 200; ++i) lru.put(ds.features(i), 5, t.full[i]);
  CHECK(lru.bytes() <= budget);
  CHECK_FALSE(lru.get(ds.features(0), 5, p));  // evicted
  CHECK(lru.get(ds.features(199), 5, p));
}

TEST_CASE("concurrent serving while the background thread trains and publishes") {
  // The concurrency under test is ours (4 serving threads + the trainer thread); TBB stays serial
  // so a TSan build (TBB itself uninstrumented) reports only races in glide's code.
  tbb::global_control serial(tbb::global_control::max_allowed_parallelism, 1);
  const Trained& t = trained();
  CachedOptions o = test_options();
  o.background = true;
  o.cache.publish_every = 32;
  CachedPredictor cp(t.model->shared_predictor(engine::EvalMode::kExact), o);
  std::atomic<std::size_t> wrong_misses = 0, hits = 0;
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th)
    threads.emplace_back([&, th] {
      Workload w(t.data.test.num_points(), {.skew = 1.2, .seed = 9});  // same hot points
      std::vector<engine::Prediction> out;
      std::vector<int> cached;
      for (int i = 0; i < 1500; ++i) {
        const std::size_t id = w.next();
        const data::SparseView x = t.data.test.features(id);
        cp.predict(std::span(&x, 1), 5, out);
        cached = engine::exit_layers(out);
        if (cached[0] >= 0)
          ++hits;
        else if (out[0].labels != t.full[id].labels)
          ++wrong_misses;
        if (th == 0 && i % 100 == 0) (void)cp.stats();
      }
    });
  for (auto& th : threads) th.join();
  cp.drain();
  CHECK(wrong_misses == 0);
  const auto s = cp.stats();
  CHECK(s[0].examples + s[1].examples > 0);
  MESSAGE("concurrent hits " << hits.load());
}

namespace {
// Selects a fixed set of output neurons for every input (a stand-in for LSH tables).
class FixedSampler : public engine::OutputSampler {
 public:
  explicit FixedSampler(std::vector<std::uint32_t> rows) : rows_(std::move(rows)) {}
  void select(const float*, std::vector<std::uint32_t>& out) override { out = rows_; }

 private:
  std::vector<std::uint32_t> rows_;
};
}  // namespace

TEST_CASE("shared caches: another predictor's misses go through its own output layer") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  const Trained& t = trained();
  const auto& exact = t.model->shared_predictor(engine::EvalMode::kExact);
  auto cp = std::make_shared<CachedPredictor>(exact, test_options());
  Workload w(t.data.test.num_points(), {.skew = 1.2, .drift = 0, .seed = 4});
  serve(*cp, w, 8000, t.data.test.num_points());  // warm: the caches hit from here on
  // The full model's top labels of the points served, so the sampled rows hold some answers.
  std::vector<std::uint32_t> rows;
  for (std::size_t i = 0; i < 50; ++i) rows.push_back(t.full[i].labels[0]);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  const auto sampled = std::make_shared<engine::SampledPredictor>(
      exact->shared_network(), std::make_shared<FixedSampler>(rows));
  const auto front = CachedPredictor::share(cp, sampled);
  CHECK(front->exits_early());
  const auto before = cp->stats();
  auto learned = [&] {
    std::uint64_t n = 0;
    for (const auto& [layer, st] : cp->states()) n += st.model->examples;
    return n;
  };
  const std::uint64_t learned_before = learned();
  std::size_t hits = 0, misses = 0;
  std::vector<engine::Prediction> out, want;
  for (std::size_t i = 0; i < 400; ++i) {
    const data::SparseView x = t.data.test.features(w.next());
    front->predict(std::span(&x, 1), 5, out);
    if (out[0].exit_layer >= 0) {
      ++hits;
      CHECK(out[0].scored == 0);
      continue;
    }
    ++misses;
    sampled->predict(std::span(&x, 1), 5, want);  // a miss is the sampled predictor's answer
    CHECK(out[0].scored == rows.size());
    CHECK(out[0].labels == want[0].labels);
  }
  const auto after = cp->stats();
  std::uint64_t more_hits = 0;
  for (std::size_t s = 0; s < after.size(); ++s) more_hits += after[s].hits - before[s].hits;
  CHECK(hits > 0);
  CHECK(misses > 0);
  CHECK(more_hits == hits);  // the owner's counters see the shared front's hits
  CHECK(learned() == learned_before + 2 * misses);  // and each miss trains both of its caches
  // Another network's predictor cannot share them.
  const auto other = std::make_shared<engine::ExactPredictor>(
      std::make_shared<const engine::Network>(t.model->network().config()));
  CHECK_THROWS_AS(CachedPredictor::share(cp, other), glide::Error);
}

TEST_CASE("caches in front of the output index: a hit skips the index, a miss is its answer") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  const Trained& t = trained();
  const auto& exact = t.model->shared_predictor(engine::EvalMode::kExact);
  auto cp = std::make_shared<CachedPredictor>(exact, test_options());
  Workload w(t.data.test.num_points(), {.skew = 1.2, .drift = 0, .seed = 6});
  serve(*cp, w, 8000, t.data.test.num_points());  // warm
  const auto indexed = std::make_shared<engine::IndexPredictor>(
      exact->shared_network(), engine::OutputIndex::build(exact->network(), t.data.train));
  const auto front = CachedPredictor::share(cp, indexed);
  std::size_t hits = 0, misses = 0;
  std::vector<engine::Prediction> out, want;
  for (std::size_t i = 0; i < 400; ++i) {
    const data::SparseView x = t.data.test.features(w.next());
    front->predict(std::span(&x, 1), 5, out, {.probes = 3});
    if (out[0].exit_layer >= 0) {
      ++hits;
      CHECK(out[0].scored == 0);  // answered before the output layer: no index search
      continue;
    }
    ++misses;
    indexed->predict(std::span(&x, 1), 5, want, {.probes = 3});  // the request's probes reach it
    CHECK(out[0].labels == want[0].labels);
    CHECK(out[0].scored == want[0].scored);
    CHECK(out[0].scored < t.model->network().num_labels());
  }
  CHECK(hits > 0);
  CHECK(misses > 0);
}
