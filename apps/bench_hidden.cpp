// `glide bench hidden`: dense against LSH-sampled hidden layers, trained in lockstep on one
// sample stream, each through its own engine::FitRun (each batch goes to every network in turn,
// each step timed on its own, so load drift on a shared host hits all alike). Reports each
// network's samples/s against the dense one, P@1 after the same samples, and P@1 after the same
// training time: each sampled network is trained again from scratch, its learning-rate schedule
// planned over the samples its speed fits in the dense network's time, until it has spent that
// time.
#include <tbb/global_control.h>

#include <algorithm>
#include <cstdio>
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

struct Contender {
  std::string name;
  engine::Config config;
  std::unique_ptr<engine::Network> net;
  std::unique_ptr<engine::Trainer> trainer;
  std::unique_ptr<engine::FitRun> run;
  double seconds = 0, lockstep_seconds = 0;  // in FitRun::step
  double p1_same_samples = 0, p1_same_time = 0;
  std::uint64_t samples() const { return run->progress().samples; }
};

// A fresh network for `x`, its training planned over `planned` samples of `train`.
void start(Contender& x, const data::Dataset& train, std::uint64_t planned) {
  x.run.reset();
  x.trainer.reset();
  x.net = std::make_unique<engine::Network>(x.config.net);
  x.trainer = std::make_unique<engine::Trainer>(*x.net, x.config.train,
                                                make_train_sampler(x.config, *x.net, false));
  x.seconds = 0;
  engine::TrainConfig tc = x.config.train;
  tc.epochs = static_cast<double>(std::max<std::uint64_t>(planned, 1)) / train.num_points();
  tc.max_seconds = 0;  // the benchmark's own budgets
  x.run = std::make_unique<engine::FitRun>(*x.net, *x.trainer, train, tc, engine::FitOptions{});
}

// Trains `c`'s next batch, timing the step.
void train_next(Contender& c) {
  const auto t0 = Clock::now();
  c.run->step();
  c.seconds += seconds_since(t0);
}

}  // namespace

int bench_hidden(int argc, char** argv) {
  cxxopts::Options o("glide bench hidden",
                     "Dense vs LSH-sampled hidden layers: samples/s, P@1 at equal samples and at "
                     "equal training time, trained in lockstep.");
  o.add_options()("preset", "synthetic data preset",
                  cxxopts::value<std::string>()->default_value("default"))(
      "train-points", "training points generated",
      cxxopts::value<std::uint64_t>()->default_value("50000"))(
      "test-points", "test points generated",
      cxxopts::value<std::uint64_t>()->default_value("2000"))(
      "samples", "samples every network trains before the equal-samples P@1",
      cxxopts::value<std::uint64_t>()->default_value("25600"))(
      "layer-sparsities", "one sampled network per value: its sampled layers' sparsity",
      cxxopts::value<std::string>()->default_value("0.05,0.2"))(
      "sampled-layers",
      "per hidden layer: dense or lsh (default: lsh for every layer but the "
      "first and the last)",
      cxxopts::value<std::string>())("bench-threads", "threads",
                                     cxxopts::value<unsigned>()->default_value("2"))("h,help",
                                                                                     "this help");
  add_config_flags(o);
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  data::XcSynthConfig sc = data::xc_preset(r["preset"].as<std::string>());
  sc.points = r["train-points"].as<std::uint64_t>();
  const data::TrainTest tt = data::synth_xc_split(sc, r["test-points"].as<std::uint64_t>());
  std::printf("data: %zu train + %zu test points, %u features, %u labels; %s\n",
              tt.train.num_points(), tt.test.num_points(), tt.train.num_features,
              tt.train.num_labels, cpu_summary().c_str());

  engine::Config base;
  base.net.num_features = tt.train.num_features;
  base.net.num_labels = tt.train.num_labels;
  base.net.hidden = {128, 4096, 128};
  apply_config_flags(r, base);
  const std::size_t layers = base.net.hidden.size();
  // A config file's hidden_sampling gives the sampled layers and their LSH settings.
  std::vector<engine::HiddenSampling> sampled = base.net.hidden_sampling;
  sampled.resize(layers);
  if (r.count("sampled-layers")) {
    const std::vector<std::string> modes = parse_list(r["sampled-layers"].as<std::string>(),
                                                      "sampled-layers", [](const std::string& m) {
                                                        return parse_choice(m, {"dense", "lsh"});
                                                      });
    if (modes.size() != layers)
      fail("--sampled-layers", "need one mode per hidden layer (" + std::to_string(layers) +
                                   "), got " + std::to_string(modes.size()));
    for (std::size_t l = 0; l < layers; ++l) sampled[l].sampled = modes[l] == "lsh";
  } else if (base.net.hidden_sampling.empty()) {
    for (std::size_t l = 1; l + 1 < layers; ++l) sampled[l].sampled = true;
  }
  if (std::none_of(sampled.begin(), sampled.end(), [](const auto& h) { return h.sampled; }))
    fail("--hidden needs a layer to sample (a middle one, or name one with --sampled-layers)");

  const std::uint64_t samples = r["samples"].as<std::uint64_t>();
  std::vector<Contender> cs;
  auto add = [&](const std::string& name, engine::Config c) {
    engine::validate(c.net);
    Contender x;
    x.name = name;
    x.config = c;
    start(x, tt.train, samples);
    cs.push_back(std::move(x));
  };
  engine::Config dense = base;
  dense.net.hidden_sampling.clear();
  add("dense", dense);
  const std::vector<double> sparsities =
      parse_list(r["layer-sparsities"].as<std::string>(), "layer-sparsities",
                 [](const std::string& s) { return parse_number(s, 0, 1); });
  for (double s : sparsities) {
    engine::Config c = base;
    c.net.hidden_sampling = sampled;
    for (auto& h : c.net.hidden_sampling) h.sparsity = s;
    char name[32];
    std::snprintf(name, sizeof name, "lsh %.3g", s);
    add(name, c);
  }
  std::printf("config (dense): %s\n", engine::to_json(dense, -1).c_str());

  tbb::global_control threads(tbb::global_control::max_allowed_parallelism,
                              r["bench-threads"].as<unsigned>());
  const std::size_t eval_points = r.count("eval-points") ? base.train.eval_points : 2000;
  auto p1 = [&](const Contender& c) {
    return engine::evaluate(*c.net, tt.test, engine::EvalMode::kExact, nullptr, eval_points)
        .precision[0];
  };
  // P@1 below is of the sampled layers' tables as training left them (FitRun::finish would
  // rebuild them over the final weights, as saving and reloading does).
  while (!cs[0].run->done())
    for (Contender& c : cs) train_next(c);
  for (Contender& c : cs) {
    c.lockstep_seconds = c.seconds;
    c.p1_same_samples = p1(c);
  }
  // Equal time: each sampled network again, planned for the samples its measured speed fits in
  // the dense network's time, the networks taking turns batch by batch.
  const double budget = cs[0].seconds;
  const std::uint64_t same_samples = cs[0].samples();
  cs[0].p1_same_time = cs[0].p1_same_samples;
  for (std::size_t i = 1; i < cs.size(); ++i)
    start(cs[i], tt.train,
          static_cast<std::uint64_t>(same_samples * budget / cs[i].lockstep_seconds));
  for (bool more = true; more;) {
    more = false;
    for (std::size_t i = 1; i < cs.size(); ++i)
      if (cs[i].seconds < budget && !cs[i].run->done()) {
        train_next(cs[i]);
        more = true;
      }
  }
  std::printf("\n%-10s %11s %9s %16s %18s %16s\n", "hidden", "samples/s", "x dense",
              "P@1 same samp.", "samples same time", "P@1 same time");
  for (Contender& c : cs) {
    if (&c != &cs[0]) c.p1_same_time = p1(c);
    const double sps = same_samples / std::max(1e-9, c.lockstep_seconds);
    const double dense_sps = same_samples / std::max(1e-9, cs[0].lockstep_seconds);
    std::printf("%-10s %11.0f %8.2fx %16.4f %18llu %16.4f\n", c.name.c_str(), sps, sps / dense_sps,
                c.p1_same_samples, static_cast<unsigned long long>(c.samples()), c.p1_same_time);
  }
  std::printf("(P@1 on %zu test points, exact; %llu samples each for the first column)\n",
              std::min(eval_points, tt.test.num_points()),
              static_cast<unsigned long long>(same_samples));
  return 0;
}

}  // namespace glide::cli
