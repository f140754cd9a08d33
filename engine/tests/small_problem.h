// The small planted extreme-classification problem the engine's end-to-end tests train on:
// 6,000 training and 1,000 test points over 1,000 labels (or as many as given), and a config that
// learns it in seconds.
#pragma once
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <atomic>

#include "data/synth_xc.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/evaluator.h"
#include "engine/fit.h"
#include "engine/output_sampler.h"

namespace glide::engine::testing {

struct SmallProblem {
  data::TrainTest data;
  Config config;
  explicit SmallProblem(double epochs, std::uint32_t labels = 1000) {
    data::XcSynthConfig sc = data::xc_preset("tiny");
    sc.points = 6000;
    sc.labels = labels;
    data = data::synth_xc_split(sc, 1000);
    config.net.num_features = data.train.num_features;
    config.net.num_labels = data.train.num_labels;
    config.net.hidden = {64};
    config.net.sparsity = 0.05;
    config.train.batch = 64;
    config.train.lr = 5e-3;
    config.train.output_lr = 0.1;  // a small label set: each row is touched often
    // The tests on this problem check the hidden and output layers' mechanisms (sampling, the
    // index, resume) against references without the wide layer's scores; wide_layer_test.cpp
    // checks the wide layer, the CLI tests run it by default.
    config.net.wide = WideMode::kOff;
    config.train.output_eps = config.train.eps;
    config.train.epochs = epochs;
  }
};

// The exact top-5 labels and scores of every point of `test`.
inline std::vector<Prediction> exact_top5(const Network& net, const data::Dataset& test) {
  std::vector<data::SparseView> inputs;
  for (std::size_t i = 0; i < test.num_points(); ++i) inputs.push_back(test.features(i));
  std::vector<Prediction> out;
  predict_topk(net, inputs, 5, EvalMode::kExact, nullptr, out);
  return out;
}

// Whether two runs predict alike, bit for bit.
inline bool same_predictions(const std::vector<Prediction>& a, const std::vector<Prediction>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].labels != b[i].labels || a[i].scores != b[i].scores) return false;
  return true;
}

// A path in a per-suite temporary directory.
inline std::string temp_path(const std::string& suite, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / suite;
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// Trains like fit() but stops after `batches` batches, as a Ctrl-C checkpoint does: the planned
// epochs, and so the learning-rate schedule, stay those of `train`.
inline FitProgress fit_interrupted(Network& net, Trainer& trainer, const data::Dataset& data,
                                   const TrainConfig& train, std::uint64_t batches) {
  std::atomic<bool> stop{false};
  FitOptions interrupted;
  interrupted.stop = &stop;
  interrupted.on_progress = [&](const FitProgress& p) { stop = stop || p.batches >= batches; };
  return fit(net, trainer, data, train, interrupted);
}

// The resume tests' two runs of config `c` on `data`: one uninterrupted, and one stopped after
// `stop_after` batches as a Ctrl-C checkpoint does, saved to `path`, reloaded (with its optimizer
// state) and trained to the end. Run under one thread for bit-exact comparisons.
struct ResumeRuns {
  std::unique_ptr<Network> full;
  LoadedModel resumed;
  FitProgress full_end, resumed_end;
};
inline ResumeRuns run_full_and_resumed(const Config& c, const data::Dataset& data,
                                       const std::string& path, std::uint64_t stop_after = 35) {
  ResumeRuns out;
  out.full = std::make_unique<Network>(c.net);
  Trainer t_full(*out.full, c.train, make_training_sampler(c, *out.full, false));
  out.full_end = fit(*out.full, t_full, data, c.train, {});

  Network part(c.net);
  Trainer t_part(part, c.train, make_training_sampler(c, part, false));
  const FitProgress half = fit_interrupted(part, t_part, data, c.train, stop_after);
  REQUIRE(half.batches == stop_after);
  save_model(path, part, c, {.samples = half.samples, .batches = t_part.batches()});

  out.resumed = load_model(path);
  REQUIRE(out.resumed.has_optimizer_state);
  Network& net = *out.resumed.net;
  Trainer t_resumed(net, out.resumed.config.train,
                    make_training_sampler(out.resumed.config, net, true));
  t_resumed.set_batches(out.resumed.state.batches);
  FitOptions fo;
  fo.start_samples = out.resumed.state.samples;
  out.resumed_end = fit(net, t_resumed, data, c.train, fo);
  return out;
}

}  // namespace glide::engine::testing
