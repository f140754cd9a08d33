// `glide bench cache`: learned caches vs the full network vs an exact-match LRU result cache of
// the same memory, in process, one request (one instance) at a time. For Zipf skews over the
// test points (and uniform): mean/p50/p99 latency, requests/s, hit rate, top-1 agreement of
// the answers with the full model, cache memory. Each cell warms the caches on the same stream
// first (the background thread trains while requests run), then measures the requests after,
// each request through all three ways in rotating order (machine load hits them alike).
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>

#include <cxxopts.hpp>

#include "apps/bench_util.h"
#include "apps/cache_flags.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "cache/cached_predictor.h"
#include "cache/lru_cache.h"
#include "cache/training_caches.h"
#include "cache/workload.h"
#include "common/error.h"
#include "engine/fit.h"

namespace glide::cli {

namespace {

struct CacheCell {
  std::vector<double> us;
  std::size_t hits = 0, agree = 0, hit_agree = 0, requests = 0;
  double seconds = 0;
  double mean() const {
    return us.empty() ? 0 : std::accumulate(us.begin(), us.end(), 0.0) / us.size();
  }
};

}  // namespace

int bench_cache(int argc, char** argv) {
  cxxopts::Options o("glide bench cache",
                     "Learned caches vs full network vs exact LRU: latency, hit rate, agreement "
                     "(docs/caches.md).");
  o.add_options()("model", "model file (.glide); default: train a quick one on --preset",
                  cxxopts::value<std::string>()->default_value(""))(
      "data", "test set the requests come from (needed with --model)",
      cxxopts::value<std::string>()->default_value(""))(
      "preset", "synthetic data preset for the quick model",
      cxxopts::value<std::string>()->default_value("default"))(
      "hidden", "hidden sizes of the quick model",
      cxxopts::value<std::string>()->default_value("128"))(
      "epochs", "epochs of the quick model", cxxopts::value<double>()->default_value("1"))(
      "test-points", "points the requests are drawn from",
      cxxopts::value<std::size_t>()->default_value("5000"))(
      "skews", "Zipf skews of the request streams (0 or uniform: uniform)",
      cxxopts::value<std::string>()->default_value("0.8,1.0,1.2,0"))(
      "drift", "requests per rotation step of the popularity ranking (0: none)",
      cxxopts::value<double>()->default_value("0"))(
      "warmup", "requests to warm the caches before measuring",
      cxxopts::value<std::size_t>()->default_value("20000"))(
      "requests", "measured requests per cell",
      cxxopts::value<std::size_t>()->default_value("5000"))(
      "cache-layers", "hidden layers with a cache (default: the last)",
      cxxopts::value<std::string>()->default_value(""))(
      "cache-min-count", "decayed top-1 count a label needs to join the hot set",
      cxxopts::value<double>()->default_value("1.0"))(
      "train-caches",
      "quick model: also train the caches during its training and start each cell from them "
      "(--model: start from the file's caches when it has some); on or off",
      cxxopts::value<std::string>()->default_value("on"))(
      "cache-rows", "rows of each training batch that train the caches",
      cxxopts::value<std::uint32_t>()->default_value("64"))(
      "cache-budget", "most of the quick model's training time the caches may take",
      cxxopts::value<double>()->default_value("0.02"))(
      "cache-rows-per-label", "centroid rows a label may hold",
      cxxopts::value<std::uint32_t>()->default_value("4"))(
      "cache-join",
      "cosine below which an example starts a new row of its label (0: only when another "
      "label's row is nearer)",
      cxxopts::value<float>()->default_value("0"))(
      "cache-skip", "skip a cache's lookups while they cost more than they save: on or off",
      cxxopts::value<std::string>()->default_value("off"))(
      "compare-previous",
      "also measure, interleaved, learned caches with the settings before the ratio test "
      "(confidence: the best cosine; calibrated to a quarter of the allowed disagreement; one "
      "row per label; no sketch; a uniform 5% of hits shadow-checked); on or off",
      cxxopts::value<std::string>()->default_value("off"))(
      "k", "labels per request", cxxopts::value<std::uint32_t>()->default_value("5"))(
      "threads", "threads (0: all cores)", cxxopts::value<unsigned>()->default_value("0"))(
      "h,help", "this help");
  add_cache_flags(o);
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  const unsigned threads = r["threads"].as<unsigned>() ? r["threads"].as<unsigned>()
                                                       : std::thread::hardware_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
  const std::uint32_t k = r["k"].as<std::uint32_t>();

  const bool train_caches = on_off_flag(r, "train-caches");
  std::shared_ptr<const engine::InferenceModel> model;
  data::Dataset test;
  cache::CacheStates warm;  // the caches each cell starts from (empty: cold)
  const auto t0 = Clock::now();
  if (!r["model"].as<std::string>().empty()) {
    const std::string path = r["model"].as<std::string>();
    BenchModel m = load_bench_model(path, r["data"].as<std::string>(), "data");
    test = std::move(m.test);
    model = std::make_shared<const engine::InferenceModel>(std::move(m.net), m.config, false);
    if (train_caches) warm = cache::read_caches(path, model->config().net);
  } else {
    QuickModelSpec spec;
    spec.preset = r["preset"].as<std::string>();
    spec.test_points = r["test-points"].as<std::size_t>();
    spec.hidden = parse_list(r["hidden"].as<std::string>(), "hidden", [](const std::string& h) {
      return static_cast<std::uint32_t>(parse_integer(h, 1, 65536));
    });
    spec.sampling = engine::OutputSampling::kRandom;
    spec.epochs = r["epochs"].as<double>();
    BenchModel m = make_quick_model(spec);
    engine::FitOptions fo;
    std::unique_ptr<cache::TrainingCaches> tc;
    if (train_caches) {
      cache::TrainingCacheOptions to;
      to.layers = cache::parse_layers(r["cache-layers"].as<std::string>(), spec.hidden.size());
      to.target = apply_cache_flags(r, to.cache);
      to.cache.rows_per_label =
          std::max<std::uint32_t>(1, r["cache-rows-per-label"].as<std::uint32_t>());
      to.cache.join_cosine = r["cache-join"].as<float>();
      to.rows_per_batch = r["cache-rows"].as<std::uint32_t>();
      to.time_budget = r["cache-budget"].as<double>();
      tc = std::make_unique<cache::TrainingCaches>(*m.net, to);
      fo.on_batch = [&](std::span<const data::SparseView> in) { tc->on_batch(in); };
    }
    const auto fp = train_quick_model(m, fo);
    std::printf("quick model on preset %s: %zu points, %.1f epochs, loss %.3f, %.1f s\n",
                spec.preset.c_str(), m.train.num_points(), fp.epoch, fp.loss, fp.seconds);
    test = std::move(m.test);
    model = std::make_shared<const engine::InferenceModel>(std::move(m.net), m.config, false);
    if (tc) {
      warm = tc->states();
      std::printf("caches trained alongside: %llu rows, %.1f s (%.1f%% of training time)\n",
                  static_cast<unsigned long long>(tc->rows()), tc->seconds(),
                  100 * tc->seconds() / std::max(fp.seconds, 1e-9));
      for (const auto& c2 : tc->report())
        std::printf("  layer %u: hot %zu, calibrated threshold %.5f\n", c2.layer, c2.hot,
                    c2.threshold);
    }
  }
  const auto& cfg = model->config().net;
  std::string hidden;
  for (auto h : cfg.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(h);
  std::printf("model: %u features, hidden %s, %u labels (ready in %.1f s); %zu request points\n",
              cfg.num_features, hidden.c_str(), cfg.num_labels, seconds_since(t0),
              test.num_points());

  // The full model's answers, to measure agreement.
  std::vector<engine::Prediction> full;
  {
    std::vector<data::SparseView> xs;
    for (std::size_t i = 0; i < test.num_points(); ++i) xs.push_back(test.features(i));
    model->predict(xs, 1, engine::EvalMode::kExact, full);
  }
  cache::CachedOptions co;
  co.layers = cache::parse_layers(r["cache-layers"].as<std::string>(), cfg.hidden.size());
  co.target = apply_cache_flags(r, co.cache);
  co.cache.min_count = r["cache-min-count"].as<double>();
  co.cache.rows_per_label =
      std::max<std::uint32_t>(1, r["cache-rows-per-label"].as<std::uint32_t>());
  co.cache.join_cosine = r["cache-join"].as<float>();
  co.skip_unprofitable = on_off_flag(r, "cache-skip");
  const bool compare = on_off_flag(r, "compare-previous");
  cache::CachedOptions prev = co;  // the "previous" way
  prev.cache.confidence = cache::Confidence::kCosine;
  prev.calibration_share = 0.25;
  prev.cache.rows_per_label = 1;
  prev.cache.sketch = 0;
  prev.uniform_shadows = true;
  const int ways = compare ? 4 : 3;
  const std::size_t warmup = r["warmup"].as<std::size_t>(), N = r["requests"].as<std::size_t>();
  const double drift = r["drift"].as<double>();
  std::printf("%zu warm-up + %zu measured requests per cell, k=%u, %u threads, target %.3f\n\n",
              warmup, N, k, threads, co.target);
  std::printf("%-9s %-8s %9s %9s %9s %9s %7s %9s %9s %10s\n", "workload", "cache", "mean us",
              "p50 us", "p99 us", "req/s", "hits", "agree", "hit agr", "memory");

  const std::vector<double> skews = parse_list(
      r["skews"].as<std::string>(), "skews",
      [](const std::string& skew) { return skew == "uniform" ? 0.0 : parse_number(skew, 0, 100); });
  for (const double skew : skews) {
    const std::string wname = skew > 0 ? "zipf " + std::to_string(skew).substr(0, 3) : "uniform";
    const cache::WorkloadOptions wo{skew, drift, 17};
    std::vector<engine::Prediction> out;
    const auto& exact = model->shared_predictor(engine::EvalMode::kExact);
    cache::CachedPredictor cp(exact, co, warm);  // fresh per cell (from the trained caches)
    std::unique_ptr<cache::CachedPredictor> cp_prev;
    // The previous settings had no sketch: caches trained alongside with one start them cold.
    const bool sketched = std::any_of(warm.begin(), warm.end(),
                                      [](const auto& w) { return w.second.model->sketch() > 0; });
    if (compare)
      cp_prev = std::make_unique<cache::CachedPredictor>(exact, prev,
                                                         sketched ? cache::CacheStates{} : warm);
    std::unique_ptr<cache::LruCache> lru;
    // One request through each way (0 off, 1 learned, 2 LRU, 3 previous); true: a cache answered.
    auto run = [&](int mode, std::size_t id) {
      const data::SparseView x = test.features(id);
      if (mode == 1 || mode == 3) {
        (mode == 1 ? cp : *cp_prev).predict(std::span(&x, 1), k, out);
        return out[0].exit_layer >= 0;
      }
      if (mode == 2) {
        out.resize(1);
        if (lru->get(x, k, out[0])) return true;
      }
      model->predict(std::span(&x, 1), k, engine::EvalMode::kExact, out);
      if (mode == 2) lru->put(x, k, out[0]);
      return false;
    };
    // Warm-up: the learned caches train online; the LRU gets their memory and fills.
    cache::Workload w(test.num_points(), wo);
    for (std::size_t i = 0; i < warmup; ++i) run(1, w.next());
    if (compare) {
      cache::Workload again(test.num_points(), wo);
      for (std::size_t i = 0; i < warmup; ++i) run(3, again.next());
    }
    const std::size_t bytes = cp.bytes();
    lru = std::make_unique<cache::LruCache>(std::max<std::size_t>(bytes, 1));
    {
      cache::Workload again(test.num_points(), wo);
      for (std::size_t i = 0; i < warmup; ++i) run(2, again.next());
    }
    // Measured: the next N requests, each through the three ways in rotating order, so load
    // from elsewhere on the machine hits all three alike.
    CacheCell cells[4];
    for (std::size_t i = 0; i < N; ++i) {
      const std::size_t id = w.next();
      for (int j = 0; j < ways; ++j) {
        const int mode = static_cast<int>((i + j) % ways);
        const auto a = Clock::now();
        const bool hit = run(mode, id);
        const double us = 1e6 * seconds_since(a);
        CacheCell& c = cells[mode];
        c.us.push_back(us);
        c.seconds += us * 1e-6;
        ++c.requests;
        c.hits += hit;
        const bool agree =
            !out.empty() && !out[0].labels.empty() && out[0].labels[0] == full[id].labels[0];
        c.agree += agree;
        c.hit_agree += hit && agree;
      }
    }
    auto print = [&](const char* mode, CacheCell c, double memory) {
      const double mean = c.mean(), p50 = percentile(c.us, 0.5), p99 = percentile(c.us, 0.99);
      char mem[32] = "-";
      if (memory > 0) std::snprintf(mem, sizeof mem, "%.2f MB", memory / 1e6);
      char hit_agree[16] = "-";
      if (c.hits)
        std::snprintf(hit_agree, sizeof hit_agree, "%.2f%%", 100.0 * c.hit_agree / c.hits);
      std::printf("%-9s %-8s %9.1f %9.1f %9.1f %9.0f %6.1f%% %8.2f%% %9s %10s\n", wname.c_str(),
                  mode, mean, p50, p99, c.requests / c.seconds, 100.0 * c.hits / c.requests,
                  100.0 * c.agree / c.requests, hit_agree, mem);
      std::fflush(stdout);
      return mean;
    };
    const double off = print("off", cells[0], 0);
    const double on = print("learned", cells[1], static_cast<double>(cp.bytes()));
    auto layers = [&](const cache::CachedPredictor& c) {
      for (const auto& s : c.stats())
        std::printf(
            "%-9s   layer %u: %llu hits, %llu misses (%llu with the right label below the "
            "threshold, %llu not looked up; warm-up included), threshold %.5f, shadow agreement "
            "%llu/%llu, hot %zu, lookup %.1f us/request, saving %.1f us/lookup\n",
            "", s.layer, static_cast<unsigned long long>(s.hits),
            static_cast<unsigned long long>(s.misses),
            static_cast<unsigned long long>(s.agreeing_misses),
            static_cast<unsigned long long>(s.skipped), s.threshold,
            static_cast<unsigned long long>(s.shadow_agreed),
            static_cast<unsigned long long>(s.shadow_checks), s.hot_labels,
            1e6 * s.lookup_seconds / std::max<std::uint64_t>(1, s.hits + s.misses - s.skipped),
            s.gain_us);
    };
    layers(cp);
    double prev_mean = 0;
    if (compare) {
      prev_mean = print("previous", cells[3], static_cast<double>(cp_prev->bytes()));
      layers(*cp_prev);
    }
    const double lru_mean = print("lru", cells[2], static_cast<double>(lru->bytes()));
    std::printf("%-9s   mean latency: learned %.2fx lower than off, lru %.2fx lower than off\n", "",
                off / std::max(on, 1e-9), off / std::max(lru_mean, 1e-9));
    if (compare)
      std::printf("%-9s   previous settings %.2fx lower than off (learned vs previous: %.2fx)\n",
                  "", off / std::max(prev_mean, 1e-9), prev_mean / std::max(on, 1e-9));
    std::printf("\n");
  }
  std::printf(
      "hits: requests answered by a cache; agree: top-1 equal to the full model's (all requests); "
      "hit agr: the same over hits only.\n");
  return 0;
}

}  // namespace glide::cli
