#include "server/model_registry.h"

#include <filesystem>

#include "common/aligned.h"

namespace glide::server {

ModelSpec parse_model_spec(const std::string& arg) {
  ModelSpec spec;
  const auto eq = arg.find('=');
  if (eq != std::string::npos) {
    spec.name = arg.substr(0, eq);
    spec.path = arg.substr(eq + 1);
  } else {
    spec.path = arg;
    spec.name = std::filesystem::path(arg).stem().string();
  }
  if (spec.path.empty()) fail("--model " + arg, "no file given");
  if (spec.name.empty() || spec.name.find_first_of("/:?#% ") != std::string::npos)
    fail("--model " + arg,
         "model name '" + spec.name + "' must be non-empty without '/', ':', '?', '#', '%', ' '");
  return spec;
}

namespace {
ModelSnapshot snapshot(std::shared_ptr<const engine::InferenceModel> m, std::uint64_t version,
                       const std::optional<cache::CachedOptions>& caching) {
  ModelSnapshot s{std::move(m), version, nullptr, {}};
  s.predictors = s.model->predictors();
  if (!caching) return s;
  // Start from the caches stored in the model file (trained with it), else cold. One set of
  // caches answers every mode; misses go through that mode's own output layer.
  cache::CacheStates warm;
  if (!s.model->path().empty()) warm = cache::read_caches(s.model->path(), s.model->config().net);
  s.cached = std::make_shared<cache::CachedPredictor>(
      s.model->shared_predictor(engine::EvalMode::kExact), *caching, warm);
  for (auto& [mode, p] : s.predictors)
    p = mode == engine::EvalMode::kExact ? s.cached : cache::CachedPredictor::share(s.cached, p);
  return s;
}
}  // namespace

ServedModel::ServedModel(ModelSpec spec, bool lsh, const BatcherOptions& batching, Metrics* metrics,
                         std::optional<cache::CachedOptions> caching)
    : spec_(std::move(spec)), lsh_(lsh), caching_(std::move(caching)), metrics_(metrics) {
  current_ =
      snapshot(std::make_shared<const engine::InferenceModel>(spec_.path, lsh_), 1, caching_);
  batcher_ = std::make_unique<Batcher>(
      spec_.name, batching, [this] { return current(); }, metrics);
}

ServedModel::ServedModel(ModelSpec spec, std::shared_ptr<const engine::InferenceModel> model,
                         const BatcherOptions& batching, Metrics* metrics,
                         std::optional<cache::CachedOptions> caching)
    : spec_(std::move(spec)),
      lsh_(model->has_sampled()),
      caching_(std::move(caching)),
      metrics_(metrics) {
  current_ = snapshot(std::move(model), 1, caching_);
  batcher_ = std::make_unique<Batcher>(
      spec_.name, batching, [this] { return current(); }, metrics);
}

ServedModel::ServedModel(ModelSpec spec, std::shared_ptr<const engine::InferenceModel> model,
                         std::shared_ptr<const engine::Predictor> exact,
                         const BatcherOptions& batching, Metrics* metrics)
    : spec_(std::move(spec)), lsh_(false), reloadable_(false), metrics_(metrics) {
  current_ = snapshot(std::move(model), 1, std::nullopt);
  current_.predictors[engine::EvalMode::kExact] = std::move(exact);
  batcher_ = std::make_unique<Batcher>(
      spec_.name, batching, [this] { return current(); }, metrics);
}

ServedModel::~ServedModel() {
  batcher_->stop();
}

ModelSnapshot ServedModel::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::uint64_t ServedModel::reload() {
  std::lock_guard reloading(reload_mutex_);
  if (!reloadable_)
    fail("reload of model '" + spec_.name +
         "': it is served across MPI ranks, each holding a "
         "shard; restart the job to serve a new version");
  // New caches for the new weights (the old ones predicted the old model's answers): those
  // stored in the new file, else cold ones.
  ModelSnapshot next;
  try {
    next = snapshot(std::make_shared<const engine::InferenceModel>(spec_.path, lsh_), 0, caching_);
  } catch (const std::exception& e) {
    if (metrics_) metrics_->count_reload(spec_.name, false);
    throw Error("reload of model '" + spec_.name + "' failed, still serving version " +
                std::to_string(current().version) + ": " + e.what());
  }
  std::uint64_t version;
  ModelSnapshot old;
  {
    std::lock_guard lock(mutex_);
    version = current_.version + 1;
    next.version = version;
    // The old predictor is freed when the last batch holding its snapshot ends.
    old = std::exchange(current_, std::move(next));
  }
  old = {};
  // Hand the dropped model's heap back to the system (a server reloading a 40 MB model kept
  // ~180 MB more than it needed). A snapshot still held by a running batch is trimmed by the next
  // reload.
  release_free_heap();
  if (metrics_) metrics_->count_reload(spec_.name, true);
  return version;
}

ModelRegistry::ModelRegistry(const std::vector<ModelSpec>& specs, bool lsh,
                             const BatcherOptions& batching, Metrics* metrics,
                             std::optional<cache::CachedOptions> caching) {
  if (specs.empty()) fail("no model to serve (--model [NAME=]PATH)");
  for (const auto& s : specs) {
    if (models_.count(s.name)) fail("--model", "two models are named '" + s.name + "'");
    models_.emplace(s.name, std::make_unique<ServedModel>(s, lsh, batching, metrics, caching));
  }
}

ModelRegistry::ModelRegistry(std::vector<std::unique_ptr<ServedModel>> models) {
  if (models.empty()) fail("no model to serve");
  for (auto& m : models) {
    if (models_.count(m->name())) fail("two models are named '" + m->name() + "'");
    const std::string name = m->name();
    models_.emplace(name, std::move(m));
  }
}

ServedModel* ModelRegistry::find(const std::string& name) {
  const auto it = models_.find(name);
  return it == models_.end() ? nullptr : it->second.get();
}

std::vector<ServedModel*> ModelRegistry::models() {
  std::vector<ServedModel*> out;
  for (auto& [name, m] : models_) out.push_back(m.get());
  return out;
}

std::string ModelRegistry::names() const {
  std::string out;
  for (const auto& [name, m] : models_) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::vector<ModelGauges> ModelRegistry::gauges() const {
  std::vector<ModelGauges> out;
  for (const auto& [name, m] : models_) {
    const ModelSnapshot s = m->current();
    out.push_back({name, s.version, s.model->config().net.num_features,
                   s.model->config().net.num_labels, m->batcher().queue_depth(),
                   s.cached ? s.cached->stats() : std::vector<cache::LayerStats>{}});
  }
  return out;
}

void ModelRegistry::reload_all(const std::function<void(const std::string&)>& log) {
  for (auto& [name, m] : models_) {
    try {
      const auto v = m->reload();
      log("reloaded model '" + name + "' from " + m->path() + ": version " + std::to_string(v));
    } catch (const std::exception& e) {
      log(e.what());
    }
  }
}

void ModelRegistry::stop() {
  for (auto& [name, m] : models_) m->batcher().stop();
}

}  // namespace glide::server
