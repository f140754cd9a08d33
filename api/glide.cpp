// The public facade (include/glide/glide.h) over the engine: validation of user batches, config
// translation, and the training / prediction entry points.
#include "glide/glide.h"

#include <tbb/global_control.h>

#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "api/config_translation.h"
#include "common/error.h"
#include "common/timing.h"
#include "data/dataset_io.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/evaluator.h"
#include "engine/fit.h"
#include "engine/network.h"
#include "engine/output_index.h"
#include "engine/output_matrix.h"
#include "engine/output_sampler.h"
#include "engine/predictor.h"
#include "engine/trainer.h"
#include "engine/validation.h"
#include "engine/wide_check.h"
#include "quant/quantize.h"

namespace glide {

using detail::apply;
using detail::from_engine;
using detail::to_engine;
using detail::to_metrics;
using detail::validate_all;

namespace {

// --- batches ---------------------------------------------------------------------------------

data::SparseView row_view(const SparseBatchView& b, std::size_t i) {
  const auto s = b.row_offsets[i], e = b.row_offsets[i + 1];
  return {b.feature_ids.subspan(s, e - s), b.values.subspan(s, e - s)};
}

// A validated view as the engine's dataset (one copy: the training loop needs a Dataset).
data::Dataset to_dataset(const SparseBatchView& b, std::uint32_t num_features,
                         std::uint32_t num_labels) {
  data::Dataset d;
  d.row_offsets.assign(b.row_offsets.begin(), b.row_offsets.end());
  d.feature_ids.assign(b.feature_ids.begin(), b.feature_ids.end());
  d.values.assign(b.values.begin(), b.values.end());
  d.label_offsets.assign(b.label_offsets.begin(), b.label_offsets.end());
  d.label_ids.assign(b.label_ids.begin(), b.label_ids.end());
  d.num_features = num_features;
  d.num_labels = num_labels;
  return d;
}

SparseBatchView dataset_view(const data::Dataset& d) {
  return {d.row_offsets, d.feature_ids, d.values, d.label_offsets, d.label_ids};
}

}  // namespace

// --- SparseBatch, Metrics ----------------------------------------------------------------------

void SparseBatch::add_row(std::span<const std::uint32_t> ids, std::span<const float> vals,
                          std::span<const std::uint32_t> labels) {
  if (ids.size() != vals.size())
    fail("SparseBatch::add_row: " + std::to_string(ids.size()) + " feature ids but " +
         std::to_string(vals.size()) + " values (the lengths must match)");
  feature_ids.insert(feature_ids.end(), ids.begin(), ids.end());
  values.insert(values.end(), vals.begin(), vals.end());
  row_offsets.push_back(feature_ids.size());
  label_ids.insert(label_ids.end(), labels.begin(), labels.end());
  label_offsets.push_back(label_ids.size());
}

SparseBatchView SparseBatch::view() const {
  return {row_offsets, feature_ids, values, label_offsets, label_ids};
}

SparseBatch read_dataset(const std::string& path) {
  data::Dataset d = data::read_dataset(path);
  SparseBatch b;
  b.row_offsets = std::move(d.row_offsets);
  b.feature_ids = std::move(d.feature_ids);
  b.values = std::move(d.values);
  b.label_offsets = std::move(d.label_offsets);
  b.label_ids = std::move(d.label_ids);
  b.num_features = d.num_features;
  b.num_labels = d.num_labels;
  return b;
}

double Metrics::p_at(int k) const {
  if (k < 1 || k > 5) fail("Metrics::p_at: k must be in 1..5, got " + std::to_string(k));
  return precision[k - 1];
}
double Metrics::ndcg_at(int k) const {
  if (k < 1 || k > 5) fail("Metrics::ndcg_at: k must be in 1..5, got " + std::to_string(k));
  return ndcg[k - 1];
}
double Metrics::psp_at(int k) const {
  if (k < 1 || k > 5) fail("Metrics::psp_at: k must be in 1..5, got " + std::to_string(k));
  if (!has_psp)
    fail(
        "Metrics::psp_at: no PSP@k here (evaluations during training have it, with the "
        "training data's label counts)");
  return psp[k - 1];
}

std::string default_config_json() {
  return engine::to_json(engine::Config{});
}

const char* version() noexcept {
  return GLIDE_VERSION_STRING;
}

// --- Model -----------------------------------------------------------------------------------

struct Model::Impl {
  engine::Config config;
  std::shared_ptr<engine::Network> net;
  engine::TrainingState state;
  // What sampled mode searches (null: the LSH tables): the model file's, or build_index()'s.
  // Training drops it with the predictors.
  std::shared_ptr<const engine::OutputIndex> index;
  // The predictor of each mode, made on first use from the current weights (sampled mode's LSH
  // tables cost memory, so models that only predict exactly never build them) and dropped by
  // training.
  mutable std::mutex predictors_mutex;
  mutable std::map<engine::EvalMode, std::shared_ptr<const engine::Predictor>> predictors;

  std::shared_ptr<const engine::Predictor> predictor(PredictMode mode) const {
    std::lock_guard lock(predictors_mutex);
    std::shared_ptr<const engine::Predictor>& p = predictors[to_engine(mode)];
    if (!p) {
      engine::PredictOptions options;
      options.mode = to_engine(mode);
      options.index = index;
      p = engine::make_predictor(net, config, options);
    }
    return p;
  }

  // Top-k of `inputs` (checked by the caller) as the library's predictions.
  std::vector<Prediction> predict(std::span<const data::SparseView> inputs, std::uint32_t k,
                                  const PredictOptions& options) const {
    std::vector<engine::Prediction> out;
    predictor(options.mode)->predict(inputs, k, out, {.probes = options.probes});
    std::vector<Prediction> result(out.size());
    for (std::size_t r = 0; r < out.size(); ++r)
      result[r] = {std::move(out[r].labels), std::move(out[r].scores), out[r].scored};
    return result;
  }

  TrainResult train(const data::Dataset& data, const TrainOptions& options,
                    const ProgressCallback& on_progress, const data::Dataset* test) {
    engine::require_trainable(*net, "model");
    engine::Config c = config;
    apply(options, c.train);
    validate_all(c);
    config = c;
    {
      std::lock_guard lock(predictors_mutex);
      predictors.clear();  // the weights change
      index.reset();
    }
    const unsigned threads =
        c.train.threads ? c.train.threads : std::max(1u, std::thread::hardware_concurrency());
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);

    const auto setup_start = Clock::now();
    // Validation rows come out of the training rows before anything sees them.
    std::optional<engine::ValidationSplit> split;
    if (options.valid_points)
      split.emplace(engine::split_validation(data, options.valid_points, "valid_points"));
    const data::Dataset& train_set = split ? split->train : data;
    const engine::BestBy best_by = engine::parse_best_by(options.best_by, "best_by");
    if (options.patience && !split) fail("patience needs valid_points");
    // A new model's wide layer (auto) is first checked against the network alone on held-out
    // training points (engine/wide_check.h); the network is then made again with the check's
    // choice (a new network's weights follow from its config alone). Its old self is let go
    // during the check, whose own network would otherwise double the memory.
    engine::LabelNeighbours checked_neighbours;
    const bool check = c.net.wide == engine::WideMode::kAuto && state.samples == 0 &&
                       state.batches == 0 && net->wide.empty();
    if (check) {
      net.reset();
      try {
        engine::check_wide(c, train_set, &checked_neighbours, nullptr);
      } catch (...) {
        net = std::make_shared<engine::Network>(config.net);
        throw;
      }
      config = c;
      net = std::make_shared<engine::Network>(c.net);
    }
    // The network trained to the end where an earlier validation was better: kept until the
    // trainer, which refers to it, is gone.
    std::shared_ptr<engine::Network> trained_net;
    engine::Trainer trainer(*net, c.train,
                            engine::make_training_sampler(c, *net, state.batches > 0));
    trainer.set_batches(state.batches);

    std::atomic<bool> stop{false};
    engine::FitOptions fo;
    double setup_seconds = 0;
    fo.on_start = [&] { setup_seconds = seconds_since(setup_start); };
    if (check) fo.wide_neighbours = &checked_neighbours;
    fo.test = test && test->num_points() ? test : nullptr;
    // Evaluations also weigh each label by its rarity in the training data (PSP@k).
    std::optional<engine::InversePropensity> propensity;
    if (fo.test || split)
      fo.propensity = &propensity.emplace(engine::InversePropensity::of(train_set));
    // The best validation's network, copied as it scored (its optimizer state with it).
    std::unique_ptr<engine::Network> best_net;
    std::uint64_t best_batches = 0;
    Metrics best_metrics;
    if (split) {
      fo.validation = &split->valid;
      fo.best_by = best_by;
      fo.patience = options.patience;
      fo.on_best = [&](const engine::FitProgress& p) {
        best_net = std::make_unique<engine::Network>(*net);
        best_batches = p.batches;
        best_metrics = to_metrics(p.valid);
      };
    }
    fo.eval_mode = to_engine(options.eval_mode);
    fo.stop = &stop;
    if (on_progress) {
      fo.on_progress = [&](const engine::FitProgress& p) {
        TrainProgress t;
        t.epoch = p.epoch;
        t.samples = p.samples;
        t.batches = p.batches;
        t.seconds = p.seconds;
        t.eval_seconds = p.eval_seconds;
        t.loss = p.loss;
        t.samples_per_second = p.samples_per_second;
        t.eta_seconds = p.eta_seconds;
        t.has_eval = p.evaluated;
        if (p.evaluated) t.eval = to_metrics(p.eval);
        t.has_validation = p.validated;
        t.best = p.best;
        if (p.validated) t.validation = to_metrics(p.valid);
        if (!on_progress(t)) stop.store(true);
      };
    }
    // Training position and optimizer clock advance even if fit() throws midway.
    struct Commit {
      Impl& self;
      engine::Trainer& trainer;
      std::optional<std::uint64_t> kept_batches;  // the best validation's, where it is kept
      ~Commit() { self.state.batches = kept_batches ? *kept_batches : trainer.batches(); }
    } commit{*this, trainer, {}};
    const engine::FitProgress done = engine::fit(*net, trainer, train_set, c.train, fo);
    const bool revert = best_net && done.best_samples != done.samples;
    if (revert) {
      // Finished as fit() finishes the trained one: sampled layers' tables, no training copy.
      best_net->build_hidden_samplers(c.train);
      best_net->wide.end_training();
      trained_net = std::move(net);
      net = std::shared_ptr<engine::Network>(std::move(best_net));
      commit.kept_batches = best_batches;
      std::lock_guard lock(predictors_mutex);
      predictors.clear();
    }
    state.samples += revert ? done.best_samples : done.samples;
    // PSP@k's counts, saved with the model (`glide eval` scores PSP@k from them).
    state.label_counts = train_set.label_counts();
    state.label_counts.resize(c.net.num_labels, 0);
    state.label_count_points = train_set.num_points();
    if (options.build_index && !stop.load()) {
      auto built = engine::OutputIndex::build(*net, train_set);
      std::lock_guard lock(predictors_mutex);
      index = std::move(built);
      predictors.erase(engine::EvalMode::kSampled);
    }

    TrainResult r;
    r.samples = done.samples;
    r.batches = trainer.batches();
    r.seconds = done.seconds;
    r.eval_seconds = done.eval_seconds;
    r.setup_seconds = setup_seconds;
    r.loss = done.loss;
    r.samples_per_second = done.samples_per_second;
    r.stopped = done.samples <
                static_cast<std::uint64_t>(std::llround(c.train.epochs * train_set.num_points()));
    if (done.has_best) {
      r.has_validation = true;
      r.best_validation = best_metrics;
      r.best_samples = done.best_samples;
      r.best_epoch = done.best_epoch;
      r.patience_stopped = options.patience && done.since_best >= options.patience;
    }
    return r;
  }

  // The label weights of PSP@k from the training set's counts the model keeps (a model trained
  // by this library or `glide train`); none for a model without them.
  std::optional<engine::InversePropensity> saved_propensity() const {
    if (state.label_counts.empty() || state.label_count_points == 0) return std::nullopt;
    return engine::InversePropensity(state.label_counts, state.label_count_points);
  }

  Metrics evaluate(const SparseBatchView& b, const PredictOptions& options,
                   const engine::InversePropensity* propensity) const {
    const engine::LabelledRows rows{b.row_offsets, b.feature_ids, b.values, b.label_offsets,
                                    b.label_ids};
    engine::EvalOptions eo;
    eo.search.probes = options.probes;
    eo.propensity = propensity;
    return to_metrics(engine::evaluate(*predictor(options.mode), rows, eo));
  }
};

Model::Model() noexcept = default;
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const Model::Impl& Model::impl(const char* what) const {
  if (!impl_)
    fail(std::string("Model::") + what +
         ": the model is empty (default-constructed or moved from); load or create one first");
  return *impl_;
}
Model::Impl& Model::impl(const char* what) {
  return const_cast<Impl&>(std::as_const(*this).impl(what));
}

Model Model::create(const ModelConfig& config, const TrainOptions& train) {
  engine::Config c;
  c.net = to_engine(config);
  apply(train, c.train);
  validate_all(c);
  Model m;
  m.impl_ = std::make_unique<Impl>();
  m.impl_->config = c;
  m.impl_->net = std::make_unique<engine::Network>(c.net);
  return m;
}

Model Model::create_from_json(const std::string& json) {
  engine::Config c = engine::config_from_json(json, "config");
  validate_all(c);
  Model m;
  m.impl_ = std::make_unique<Impl>();
  m.impl_->config = c;
  m.impl_->net = std::make_unique<engine::Network>(c.net);
  return m;
}

Model Model::load(const std::string& path, bool optimizer_state) {
  engine::LoadedModel loaded = engine::load_model(path, optimizer_state);
  Model m;
  m.impl_ = std::make_unique<Impl>();
  m.impl_->config = loaded.config;
  m.impl_->net = std::move(loaded.net);
  m.impl_->state = loaded.state;
  m.impl_->index =
      engine::OutputIndex::load(path, m.impl_->net->output->rows(), m.impl_->net->output->cols());
  return m;
}

void Model::save(const std::string& path, bool optimizer_state) const {
  const Impl& i = impl("save");
  engine::SaveOptions o;
  o.optimizer_state = optimizer_state;
  std::shared_ptr<const engine::OutputIndex> index;
  {
    std::lock_guard lock(i.predictors_mutex);
    index = i.index;
  }
  if (index) o.extra_sections = [&](engine::ModelFileWriter& w) { index->save(w); };
  engine::save_model(path, *i.net, i.config, i.state, o);
}

void Model::quantize(const std::string& precision, const std::string& granularity) {
  Impl& i = impl("quantize");
  if (precision != "int8" && precision != "bf16")
    fail("Model::quantize: the precision must be int8 or bf16, got '" + precision + "'");
  const quant::Granularity g = quant::parse_granularity(granularity);
  if (i.net->output->precision() != engine::Precision::kF32)
    fail(std::string("Model::quantize: the model is already quantized (precision ") +
         engine::precision_name(i.net->output->precision()) + ")");
  if (precision == "bf16")
    engine::output_to_bf16(*i.net, /*optimizer=*/false);
  else
    engine::quantize_output(*i.net, g);
  // The predictors score the old rows; the index's clusters (hidden activations) still hold.
  std::lock_guard lock(i.predictors_mutex);
  i.predictors.clear();
}

std::string Model::precision() const {
  return engine::precision_name(impl("precision").net->output->precision());
}

void Model::build_index(const SparseBatchView& train) {
  Impl& i = impl("build_index");
  const auto F = i.config.net.num_features, L = i.config.net.num_labels;
  check_batch(train, F, L, /*need_labels=*/true, "index training batch");
  auto index = engine::OutputIndex::build(*i.net, to_dataset(train, F, L));
  std::lock_guard lock(i.predictors_mutex);
  i.index = std::move(index);
  i.predictors.erase(engine::EvalMode::kSampled);  // it searched the old index or the tables
}

bool Model::has_index() const {
  const Impl& i = impl("has_index");
  std::lock_guard lock(i.predictors_mutex);
  return i.index != nullptr;
}

bool Model::empty() const noexcept {
  return !impl_;
}
std::uint32_t Model::num_features() const {
  return impl("num_features").config.net.num_features;
}
std::uint32_t Model::num_labels() const {
  return impl("num_labels").config.net.num_labels;
}
ModelConfig Model::config() const {
  return from_engine(impl("config").config.net);
}
TrainOptions Model::train_options() const {
  return from_engine(impl("train_options").config.train);
}
std::string Model::config_json() const {
  return engine::to_json(impl("config_json").config);
}
std::uint64_t Model::samples_trained() const {
  return impl("samples_trained").state.samples;
}

TrainResult Model::train(const SparseBatchView& data, const TrainOptions& options,
                         const ProgressCallback& on_progress, const SparseBatchView& test) {
  Impl& i = impl("train");
  const auto F = i.config.net.num_features, L = i.config.net.num_labels;
  check_batch(data, F, L, /*need_labels=*/true, "training batch");
  const data::Dataset train_set = to_dataset(data, F, L);
  data::Dataset test_set;
  if (test.rows()) {
    check_batch(test, F, L, /*need_labels=*/true, "test batch");
    test_set = to_dataset(test, F, L);
  }
  return i.train(train_set, options, on_progress, test.rows() ? &test_set : nullptr);
}

TrainResult Model::train_file(const std::string& path, const TrainOptions& options,
                              const ProgressCallback& on_progress, const std::string& test_path) {
  Impl& i = impl("train_file");
  const auto F = i.config.net.num_features, L = i.config.net.num_labels;
  data::Dataset train_set = data::read_dataset(path);
  check_batch(dataset_view(train_set), F, L, true, path);
  train_set.num_features = F;
  train_set.num_labels = L;
  data::Dataset test_set;
  if (!test_path.empty()) {
    test_set = data::read_dataset(test_path);
    check_batch(dataset_view(test_set), F, L, true, test_path);
    test_set.num_features = F;
    test_set.num_labels = L;
  }
  return i.train(train_set, options, on_progress, test_path.empty() ? nullptr : &test_set);
}

Prediction Model::predict(SparseVectorView input, std::uint32_t k, PredictMode mode) const {
  return predict(input, k, PredictOptions{.mode = mode});
}

Prediction Model::predict(SparseVectorView input, std::uint32_t k,
                          const PredictOptions& options) const {
  const Impl& i = impl("predict");
  if (k == 0) fail("Model::predict: k must be at least 1");
  const data::SparseView x{input.ids, input.values};
  if (const std::string problem = engine::input_problem(x, i.config.net.num_features);
      !problem.empty())
    fail("input", problem);
  return std::move(i.predict({&x, 1}, k, options)[0]);
}

std::vector<Prediction> Model::predict(const SparseBatchView& inputs, std::uint32_t k,
                                       PredictMode mode) const {
  return predict(inputs, k, PredictOptions{.mode = mode});
}

std::vector<Prediction> Model::predict(const SparseBatchView& inputs, std::uint32_t k,
                                       const PredictOptions& options) const {
  const Impl& i = impl("predict");
  if (k == 0) fail("Model::predict: k must be at least 1");
  // Labels are ignored here, so they are not checked either.
  const SparseBatchView features{inputs.row_offsets, inputs.feature_ids, inputs.values, {}, {}};
  check_batch(features, i.config.net.num_features, i.config.net.num_labels, false, "batch");
  std::vector<data::SparseView> views(inputs.rows());
  for (std::size_t r = 0; r < views.size(); ++r) views[r] = row_view(inputs, r);
  return i.predict(views, k, options);
}

Metrics Model::evaluate(const SparseBatchView& data, PredictMode mode) const {
  return evaluate(data, PredictOptions{.mode = mode});
}

Metrics Model::evaluate(const SparseBatchView& data, const PredictOptions& options) const {
  const Impl& i = impl("evaluate");
  check_batch(data, i.config.net.num_features, i.config.net.num_labels, true, "evaluation batch");
  const auto propensity = i.saved_propensity();
  return i.evaluate(data, options, propensity ? &*propensity : nullptr);
}

Metrics Model::evaluate(const SparseBatchView& data, const SparseBatchView& train,
                        const PredictOptions& options) const {
  const Impl& i = impl("evaluate");
  const std::uint32_t F = i.config.net.num_features, L = i.config.net.num_labels;
  check_batch(data, F, L, true, "evaluation batch");
  check_batch(train, F, L, true, "training batch (label counts for PSP@k)");
  if (train.rows() == 0) fail("training batch (label counts for PSP@k): no rows");
  std::vector<std::uint32_t> counts(L, 0);
  for (const std::uint32_t l : train.label_ids) ++counts[l];
  const engine::InversePropensity propensity(counts, train.rows());
  return i.evaluate(data, options, &propensity);
}

Metrics Model::evaluate_file(const std::string& path, PredictMode mode) const {
  return evaluate_file(path, PredictOptions{.mode = mode});
}

Metrics Model::evaluate_file(const std::string& path, const PredictOptions& options) const {
  const Impl& i = impl("evaluate_file");
  const data::Dataset d = data::read_dataset(path);
  check_batch(dataset_view(d), i.config.net.num_features, i.config.net.num_labels, true, path);
  const auto propensity = i.saved_propensity();
  return i.evaluate(dataset_view(d), options, propensity ? &*propensity : nullptr);
}

}  // namespace glide
