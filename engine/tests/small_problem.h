// The small planted extreme-classification problem the engine's end-to-end tests train on:
// 6,000 training and 1,000 test points over 1,000 labels, and a config that learns it in seconds.
#pragma once
#include <filesystem>
#include <string>

#include <atomic>

#include "data/synth_xc.h"
#include "engine/config.h"
#include "engine/fit.h"

namespace glide::engine::testing {

struct SmallProblem {
  data::TrainTest data;
  Config config;
  explicit SmallProblem(double epochs) {
    data::XcSynthConfig sc = data::xc_preset("tiny");
    sc.points = 6000;
    sc.labels = 1000;
    data = data::synth_xc_split(sc, 1000);
    config.net.num_features = data.train.num_features;
    config.net.num_labels = data.train.num_labels;
    config.net.hidden = {64};
    config.net.sparsity = 0.05;
    config.train.batch = 64;
    config.train.lr = 5e-3;
    config.train.epochs = epochs;
  }
};

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

}  // namespace glide::engine::testing
