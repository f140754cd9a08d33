// The models a server holds, by name: each with its current version, its batcher, and hot reload
// (load the file again off the request path, then swap the shared_ptr; batches already running
// keep the old model until they finish).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/batcher.h"
#include "server/metrics.h"

namespace glide::server {

struct ModelSpec {
  std::string name;
  std::string path;
};

// "NAME=PATH" or "PATH" (the name is then the file name without directory and extension).
ModelSpec parse_model_spec(const std::string& arg);

class ServedModel {
 public:
  // Loads the file (throws glide::Error). `lsh`: also build the tables sampled mode needs.
  ServedModel(ModelSpec spec, bool lsh, const BatcherOptions& batching, Metrics* metrics,
              std::optional<cache::CachedOptions> caching = std::nullopt);
  // Serves a model already in memory (benchmarks, library users); reload reads spec.path.
  ServedModel(ModelSpec spec, std::shared_ptr<const engine::InferenceModel> model,
              const BatcherOptions& batching, Metrics* metrics,
              std::optional<cache::CachedOptions> caching = std::nullopt);
  // Serves `model` with `exact` answering exact-mode requests instead of the model's own
  // predictor (a label-sharded model under mpirun, dist/sharded_serving.h); it cannot be
  // reloaded from a file.
  ServedModel(ModelSpec spec, std::shared_ptr<const engine::InferenceModel> model,
              std::shared_ptr<const engine::Predictor> exact, const BatcherOptions& batching,
              Metrics* metrics);
  ~ServedModel();

  const std::string& name() const { return spec_.name; }
  const std::string& path() const { return spec_.path; }
  ModelSnapshot current() const;
  Batcher& batcher() { return *batcher_; }
  // Loads the file again and swaps it in; returns the new version. On failure throws
  // glide::Error with the loader's message and the old model keeps serving.
  std::uint64_t reload();

 private:
  const ModelSpec spec_;
  const bool lsh_;
  const std::optional<cache::CachedOptions> caching_;  // learned caches on, with these options
  const bool reloadable_ = true;
  Metrics* const metrics_;
  mutable std::mutex mutex_;  // guards current_
  ModelSnapshot current_;
  std::mutex reload_mutex_;  // one reload at a time per model
  std::unique_ptr<Batcher> batcher_;
};

class ModelRegistry {
 public:
  // Loads every model (throws glide::Error naming the file that failed).
  ModelRegistry(const std::vector<ModelSpec>& specs, bool lsh, const BatcherOptions& batching,
                Metrics* metrics, std::optional<cache::CachedOptions> caching = std::nullopt);
  ModelRegistry(std::vector<std::unique_ptr<ServedModel>> models);
  // nullptr when no model has that name.
  ServedModel* find(const std::string& name);
  std::vector<ServedModel*> models();
  std::string names() const;  // "a, b" for error messages
  std::vector<ModelGauges> gauges() const;
  // Reloads every model (SIGHUP); `log` gets one line per model.
  void reload_all(const std::function<void(const std::string&)>& log);
  // Drains and stops every batcher.
  void stop();

 private:
  std::map<std::string, std::unique_ptr<ServedModel>> models_;
};

}  // namespace glide::server
