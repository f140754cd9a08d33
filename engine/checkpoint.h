// Saving and loading a network, its config, optimizer state and training position as one .glide
// model file (docs/model-format.md).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/network.h"

namespace glide::engine {

struct TrainingState {
  std::uint64_t samples = 0;  // samples trained so far (the resume position)
  std::uint64_t batches = 0;
  // The training set's points per label (label_counts[l]) and its point count: what PSP@k's
  // propensities are fitted to, so that `glide eval` scores PSP@k without the training file.
  // Empty where unknown (models from before them, sharded models).
  std::vector<std::uint32_t> label_counts = {};
  std::uint64_t label_count_points = 0;
};

class ModelFileWriter;

struct SaveOptions {
  bool optimizer_state = true;  // Adam moments, needed to resume training exactly
  int zstd_level = 3;
  int threads = 0;  // compressing (ModelFileWriteOptions::threads)
  // Adds more sections before the file is committed (learned caches, cache/cache_file.h).
  std::function<void(ModelFileWriter&)> extra_sections = nullptr;
};

// Writes atomically: a crash leaves the previous file or the complete new one.
void save_model(const std::string& path, const Network& net, const Config& config,
                const TrainingState& state, const SaveOptions& options = {});

struct LoadedModel {
  std::unique_ptr<Network> net;
  Config config;
  TrainingState state;
  bool has_optimizer_state = false;
};

// A model file's config from before train.output_optimizer existed: its output layer was trained
// with the hidden layers' optimizer and lr, and a resumed run goes on so (with the optimizer state
// the file saved); one from before train.output_eps used the hidden layers' eps. `config_json` is
// the file's config section, `train` what it parsed to.
void keep_legacy_output_optimizer(const std::string& config_json, TrainConfig& train);

// A model file's config from before network.wide existed has no wide layer (whatever the
// default is now).
void keep_legacy_network(const std::string& config_json, NetworkConfig& net);

// A sharded model's manifest (engine/sharded_model.h) loads as its shards merged in this process.
// Checks everything (magic, version, checksums, shapes against the config) and names what is
// wrong. Optimizer state is read when present and `optimizer_state` is set.
LoadedModel load_model(const std::string& path, bool optimizer_state = true);

}  // namespace glide::engine
