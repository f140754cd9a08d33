// `glide bench train`: the engine's speed and accuracy on the amazon670k synthetic shape, with
// three output layers trained on the same sample stream in one run: LSH-sampled, uniformly
// random shared negatives of the same size, and dense (exact softmax, fewer samples).
// --precisions fp32,bf16-act,bf16 trains each listed variant once per output-layer precision
// instead, the precisions in lockstep (batch by batch, each batch timed per precision), and
// reports each precision's samples/s and P@1 against fp32 from the same run.
#include <sys/resource.h>
#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/bench_util.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "apps/model_setup.h"
#include "common/cpu.h"
#include "common/error.h"
#include "data/synth_xc.h"
#include "engine/evaluator.h"
#include "engine/fit.h"
#include "engine/trainer.h"

namespace glide::cli {

namespace {

double rss_mb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * 4096.0 / (1 << 20);
}
double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

struct VariantResult {
  std::string name;
  double sps_1 = 0, sps_2 = 0;  // samples/s at 1 and 2 threads
  std::uint64_t samples = 0, one_thread_samples = 0;
  std::uint32_t batch = 0;
  double p1_at_common = -1, p1_final = -1;
  engine::PhaseTimes times;
  double rss = 0;
  double mean_active = 0;
  double distinct_per_batch = 0;  // output rows touched per batch
};

// Trains one network per config on the first `limit` samples of the training set's shuffled
// order, each through its own engine::FitRun with the configured lr schedule, in lockstep (each
// batch goes to every network in turn, each step timed on its own, so load drift on a shared host
// hits every config alike): the batches that start below `one_thread` samples on 1 thread, the rest
// on `threads`, stopping early after `seconds` per config; evaluates when `common` samples are
// done.
std::vector<VariantResult> run_lockstep(const std::vector<std::string>& names,
                                        const std::vector<engine::Config>& configs,
                                        const data::Dataset& train, std::uint64_t limit,
                                        std::uint64_t one_thread, unsigned threads, double seconds,
                                        std::uint64_t common, const data::Dataset& test,
                                        std::size_t eval_points) {
  const std::size_t P = configs.size();
  std::vector<VariantResult> v(P);
  std::vector<std::unique_ptr<engine::Network>> nets;
  std::vector<std::unique_ptr<engine::Trainer>> trainers;
  std::vector<std::unique_ptr<engine::FitRun>> runs;
  for (std::size_t p = 0; p < P; ++p) {
    v[p].name = names[p];
    engine::TrainConfig tc = configs[p].train;
    tc.epochs = static_cast<double>(limit) / train.num_points();
    // glide train's lr schedule, planned over `limit` samples or the lockstep's wall budget (the
    // clock of every run of the lockstep counts the others' steps too), so P@1 final is what
    // `glide train` gives for those samples.
    tc.max_seconds = seconds * P;
    nets.push_back(std::make_unique<engine::Network>(configs[p].net));
    trainers.push_back(std::make_unique<engine::Trainer>(
        *nets[p], configs[p].train, make_train_sampler(configs[p], *nets[p], false)));
    runs.push_back(
        std::make_unique<engine::FitRun>(*nets[p], *trainers[p], train, tc, engine::FitOptions{}));
  }
  const std::uint32_t B = configs[0].train.batch;
  std::vector<double> secs[2] = {std::vector<double>(P, 0), std::vector<double>(P, 0)};
  std::uint64_t done[2] = {0, 0};
  std::vector<std::uint64_t> pairs(P, 0), distinct(P, 0);
  std::uint64_t batches = 0;
  const auto start = Clock::now();
  std::vector<engine::PhaseTimes> before_parallel(P);
  auto position = [&] { return runs[0]->progress().samples; };
  for (int phase = 0; phase < 2; ++phase) {
    tbb::global_control limit_threads(tbb::global_control::max_allowed_parallelism,
                                      phase == 0 ? 1 : threads);
    if (phase == 1)
      for (std::size_t p = 0; p < P; ++p) before_parallel[p] = trainers[p]->times();
    while (!runs[0]->done() && (phase == 1 || position() < one_thread)) {
      if (seconds_since(start) > seconds * P) break;
      const std::uint64_t pos = position();
      for (std::size_t p = 0; p < P; ++p) {
        const auto t0 = Clock::now();
        const engine::BatchResult r = runs[p]->step();
        secs[phase][p] += seconds_since(t0);
        pairs[p] += r.active_pairs;
        distinct[p] += r.distinct_active;
      }
      ++batches;
      const std::uint64_t take = position() - pos;
      const bool crossed = pos < common && pos + take >= common;
      done[phase] += take;
      if (crossed)
        for (std::size_t p = 0; p < P; ++p)
          v[p].p1_at_common =
              engine::evaluate(*nets[p], test, engine::EvalMode::kExact, nullptr, eval_points)
                  .precision[0];
    }
  }
  tbb::global_control all_threads(tbb::global_control::max_allowed_parallelism, threads);
  // P@1 final is of the networks as training left them (FitRun::finish, not called, would
  // rebuild sampled hidden layers' tables over the final weights, as saving and reloading does).
  for (std::size_t p = 0; p < P; ++p) {
    VariantResult& x = v[p];
    x.samples = position();
    x.one_thread_samples = done[0];
    x.batch = B;
    x.sps_1 = secs[0][p] > 0 ? done[0] / secs[0][p] : 0;
    x.sps_2 = secs[1][p] > 0 ? done[1] / secs[1][p] : 0;
    const engine::PhaseTimes& all = trainers[p]->times();
    const engine::PhaseTimes& b = before_parallel[p];
    x.times = {all.select - b.select, all.forward - b.forward, all.loss - b.loss,
               all.backward - b.backward, all.refresh - b.refresh};
    x.mean_active = x.samples ? static_cast<double>(pairs[p]) / x.samples : 0;
    x.distinct_per_batch = batches ? static_cast<double>(distinct[p]) / batches : 0;
    x.rss = rss_mb();  // (of the process: every network of the lockstep is alive)
    x.p1_final = engine::evaluate(*nets[p], test, engine::EvalMode::kExact, nullptr, eval_points)
                     .precision[0];
  }
  return v;
}

// Seconds of `phase` per sample of the parallel phase.
double per_sample(const VariantResult& v, double phase) {
  const std::uint64_t n = v.samples - std::min(v.samples, v.one_thread_samples);
  return n ? phase / n : 0;
}

}  // namespace

int bench_train(int argc, char** argv) {
  cxxopts::Options o(
      "glide bench train",
      "Training speed and accuracy: LSH-sampled vs random negatives vs dense output layer.");
  o.add_options()("preset", "synthetic data preset",
                  cxxopts::value<std::string>()->default_value("amazon670k"))(
      "train-points", "training points generated",
      cxxopts::value<std::uint64_t>()->default_value("102400"))(
      "test-points", "test points generated",
      cxxopts::value<std::uint64_t>()->default_value("2000"))(
      "samples", "samples trained by the sampled variants",
      cxxopts::value<std::uint64_t>()->default_value("102400"))(
      "one-thread-samples", "of which first trained on 1 thread",
      cxxopts::value<std::uint64_t>()->default_value("10240"))(
      "dense-samples", "samples trained by the dense variant",
      cxxopts::value<std::uint64_t>()->default_value("2048"))(
      "seconds", "wall budget per variant", cxxopts::value<double>()->default_value("300"))(
      "variants", "comma list of lsh,random,dense",
      cxxopts::value<std::string>()->default_value("lsh,random,dense"))(
      "bench-threads", "threads of the parallel phase",
      cxxopts::value<unsigned>()->default_value("2"))(
      "precisions",
      "comma list of output-layer precisions (fp32,bf16-act,bf16,bf16-w), each variant trained "
      "in each (default: only --precision's)",
      cxxopts::value<std::string>())("h,help", "this help");
  add_config_flags(o);
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  data::XcSynthConfig sc = data::xc_preset(r["preset"].as<std::string>());
  sc.points = r["train-points"].as<std::uint64_t>();
  const auto g0 = Clock::now();
  const data::TrainTest tt = data::synth_xc_split(sc, r["test-points"].as<std::uint64_t>());
  std::printf(
      "data: %zu train + %zu test points, %u features, %u labels, generated in %.1f s; %s\n",
      tt.train.num_points(), tt.test.num_points(), tt.train.num_features, tt.train.num_labels,
      seconds_since(g0), cpu_summary().c_str());

  engine::Config config;
  config.net.num_features = tt.train.num_features;
  config.net.num_labels = tt.train.num_labels;
  apply_config_flags(r, config);
  const std::uint64_t samples =
      std::min<std::uint64_t>(r["samples"].as<std::uint64_t>(), tt.train.num_points());
  const std::uint64_t dense_samples = std::min(r["dense-samples"].as<std::uint64_t>(), samples);
  const unsigned threads = r["bench-threads"].as<unsigned>();
  const double seconds = r["seconds"].as<double>();
  const std::size_t eval_points = r.count("eval-points") ? config.train.eval_points : 2000;
  std::printf("config: %s\n", engine::to_json(config, -1).c_str());

  const bool by_precision = r.count("precisions") > 0;
  const std::vector<std::string> precisions =
      by_precision ? parse_list(r["precisions"].as<std::string>(), "precisions",
                                [&](const std::string& precision) {
                                  engine::TrainConfig t = config.train;
                                  t.precision = engine::parse_enum<engine::TrainPrecision>(
                                      precision, "--precisions");
                                  engine::validate(t);
                                  return precision;
                                })
                   : std::vector<std::string>{engine::name(config.train.precision)};
  const std::vector<std::string> variants =
      parse_list(by_precision && !r.count("variants") ? "lsh" : r["variants"].as<std::string>(),
                 "variants", [](const std::string& name) {
                   engine::parse_sampling(name);
                   return name;
                 });
  std::vector<VariantResult> results;
  for (const std::string& name : variants) {
    // With --precisions, the precisions of a variant train in lockstep; otherwise one at a time.
    std::vector<std::string> labels;
    std::vector<engine::Config> configs;
    const bool dense = name == "dense";
    for (const std::string& precision : precisions) {
      engine::Config c = config;
      c.net.sampling = engine::parse_sampling(name);
      c.train.precision = engine::parse_enum<engine::TrainPrecision>(precision, "--precisions");
      engine::validate(c.train);
      if (dense)
        c.train.batch =
            std::min<std::uint32_t>(c.train.batch, 64);  // keeps B x 670k logits in memory
      labels.push_back(by_precision ? name + "/" + precision : name);
      configs.push_back(c);
    }
    std::printf("running %s%s...\n", by_precision ? "in lockstep " : "", name.c_str());
    std::fflush(stdout);
    const auto v = run_lockstep(
        labels, configs, tt.train, dense ? dense_samples : samples,
        std::min(r["one-thread-samples"].as<std::uint64_t>(), dense ? dense_samples / 4 : samples),
        threads, seconds, dense_samples, tt.test, eval_points);
    results.insert(results.end(), v.begin(), v.end());
  }

  std::printf("\n%-14s %9s %9s %7s %9s %12s %12s %9s %10s %9s\n", "output", "smp/s 1t", "smp/s 2t",
              "2t/1t", "samples", "P@1 @common", "P@1 final", "active", "rows/batch", "RSS MB");
  for (const auto& v : results)
    std::printf("%-14s %9.0f %9.0f %7.2f %9llu %12.4f %12.4f %9.0f %10.0f %9.0f\n", v.name.c_str(),
                v.sps_1, v.sps_2, v.sps_1 > 0 ? v.sps_2 / v.sps_1 : 0,
                static_cast<unsigned long long>(v.samples), v.p1_at_common, v.p1_final,
                v.mean_active, v.distinct_per_batch, v.rss);
  std::printf(
      "(P@1 @common: exact P@1 on %zu test points after the first %llu samples, the same for every "
      "variant)\n",
      eval_points, static_cast<unsigned long long>(dense_samples));
  std::printf(
      "\ntime split of the %u-thread phase (%% of step time; ms per batch):\n%-14s %8s %8s %8s "
      "%9s %8s %9s\n",
      threads, "output", "select", "forward", "loss", "backward", "refresh", "ms/batch");
  for (const auto& v : results) {
    const double t = v.times.total();
    if (t <= 0) continue;
    const double parallel_batches =
        static_cast<double>(v.samples - std::min(v.samples, v.one_thread_samples)) / v.batch;
    std::printf("%-14s %8.1f %8.1f %8.1f %9.1f %8.1f %9.1f\n", v.name.c_str(),
                100 * v.times.select / t, 100 * v.times.forward / t, 100 * v.times.loss / t,
                100 * v.times.backward / t, 100 * v.times.refresh / t,
                parallel_batches > 0 ? 1e3 * t / parallel_batches : 0);
  }
  if (by_precision) {
    // Each precision against fp32 of the same variant, from this run.
    std::printf("\nprecision vs fp32 (same variant, same samples, this run):\n");
    for (const auto& v : results) {
      const std::string variant = v.name.substr(0, v.name.find('/'));
      const VariantResult* base = nullptr;
      for (const auto& b : results)
        if (b.name == variant + "/fp32") base = &b;
      if (!base || base == &v || base->sps_2 <= 0) continue;
      std::printf(
          "%-14s samples/s %.2fx (1 thread %.2fx); P@1 final %+.4f; forward %.2fx, backward "
          "%.2fx the fp32 time per sample\n",
          v.name.c_str(), v.sps_2 / base->sps_2, base->sps_1 > 0 ? v.sps_1 / base->sps_1 : 0,
          v.p1_final - base->p1_final,
          per_sample(v, v.times.forward) / per_sample(*base, base->times.forward),
          per_sample(v, v.times.backward) / per_sample(*base, base->times.backward));
    }
  }
  const VariantResult *lsh = nullptr, *rnd = nullptr, *dns = nullptr;
  for (const auto& v : results) {
    if (v.name == "lsh") lsh = &v;
    if (v.name == "random") rnd = &v;
    if (v.name == "dense") dns = &v;
  }
  std::printf("\nratios:");
  if (lsh && dns && dns->sps_2 > 0)
    std::printf(" lsh/dense samples/s %.1fx;", lsh->sps_2 / dns->sps_2);
  if (lsh && rnd && rnd->sps_2 > 0)
    std::printf(" lsh/random samples/s %.2fx;", lsh->sps_2 / rnd->sps_2);
  if (lsh && dns && dns->p1_at_common > 0)
    std::printf(" lsh/dense P@1 at common samples %.2f;", lsh->p1_at_common / dns->p1_at_common);
  if (lsh && rnd && rnd->p1_final > 0)
    std::printf(" lsh/random P@1 final %.2f;", lsh->p1_final / rnd->p1_final);
  std::printf("\npeak RSS %.0f MB\n", peak_rss_mb());
  return 0;
}

}  // namespace glide::cli
