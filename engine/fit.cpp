#include "engine/fit.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/aligned.h"
#include "common/error.h"
#include "common/rng.h"
#include "data/shuffle.h"
#include "engine/output_matrix.h"
#include "engine/wide_centroids.h"
#include "engine/wide_check.h"

namespace glide::engine {

FitRun::FitRun(Network& net, Trainer& trainer, const data::Dataset& train_set,
               const TrainConfig& train, const FitOptions& options)
    : net_(net),
      trainer_(trainer),
      train_set_(train_set),
      train_(with_network_defaults(train, net.config().wide)),
      options_(options),
      n_(train_set.num_points()),
      loss_avg_(NAN) {
  check_training_set(train_set, net.config());
  if (options.validation && options.best_by == BestBy::kPsp5 && !options.propensity)
    fail("validation best by psp5 needs the labels' propensities (FitOptions::propensity)");
  if (options.patience && !options.validation) fail("patience needs validation points");
  if (OutputSampler* sampler = trainer.sampler()) {
    // The model may have more labels than the training set declares: they have no points.
    std::vector<std::uint32_t> counts = train_set.label_counts();
    counts.resize(net.config().num_labels, 0);
    sampler->set_label_counts(counts, n_);
  }
  // A new model's wide layer starts at its training labels' centroids (the rare labels' path at
  // zero, on their centroids' features); a resumed one has its own.
  if (has_wide(net.config()) && net.wide.empty()) {
    const NetworkConfig& c = net.config();
    WideOptions wide = wide_options(c);
    wide.reference_norm = options.wide_reference_norm;
    // The rare labels' path starts at zero: no start to choose.
    const bool centroids = wide_leads(c.wide);
    const bool choose_power = centroids && c.wide_norm_power == kWideNormPowerAuto,
               choose_rounds = centroids && c.wide_share_rounds == kWideShareRoundsAuto,
               choose_contrast = centroids && c.wide_contrast == kWideContrastAuto;
    LabelNeighbours neighbours;  // the choice's, reused by the final build
    if (choose_power || choose_rounds || choose_contrast) {
      wide_start_ =
          WideLayer::choose_start(train_set, c.num_features, c.num_labels, wide, choose_power,
                                  choose_rounds, choose_contrast, &neighbours, options.setup_log);
      wide.norm_power = wide_start_->norm_power;
      wide.share_rounds = wide_start_->share_rounds;
      wide.contrast = wide_start_->contrast;
      if (options.on_wide_start) options.on_wide_start(*wide_start_);
    }
    // check_wide's neighbours when it chose before the run.
    const LabelNeighbours* known = options.wide_neighbours ? options.wide_neighbours : &neighbours;
    const auto t = std::chrono::steady_clock::now();
    net.wide = WideLayer::from_centroids(train_set, c.num_features, c.num_labels, wide, known);
    if (options.setup_log)
      options.setup_log(
          std::string(c.wide == WideMode::kTail ? "the rare labels' path" : "the wide layer") +
          " built on every training point: " + std::to_string(net.wide.entries()) + " entries, " +
          seconds_text(t));
    // The setup freed its per-label lists (about 0.8 GB at amazon670k) in small blocks, which the
    // training's arrays of fresh pages cannot reuse.
    release_free_heap();
  }
  // The wide layer's label-major copy for training, built with the model rather than in the
  // first batch's time.
  if (!net.wide.empty()) net.wide.prepare_training();
  total_ = static_cast<std::uint64_t>(std::llround(train.epochs * n_));
  if (options.on_start) options.on_start();
  t0_ = std::chrono::steady_clock::now();
  p_.samples = options.start_samples;
  p_.batches = trainer.batches();
  epoch_ = p_.samples / n_;
  order_ = data::shuffled_order(n_, derive_seed(train.seed, epoch_));
}

void check_training_set(const data::Dataset& train_set, const NetworkConfig& net) {
  if (train_set.num_points() == 0) fail("training set is empty");
  if (train_set.num_features > net.num_features || train_set.num_labels > net.num_labels)
    fail("training set dimensions (" + std::to_string(train_set.num_features) + " features, " +
         std::to_string(train_set.num_labels) + " labels) exceed the model's (" +
         std::to_string(net.num_features) + ", " + std::to_string(net.num_labels) + ")");
}

double schedule_position(std::uint64_t samples, std::uint64_t total_samples, double seconds,
                         double max_seconds) {
  double position =
      static_cast<double>(samples) / static_cast<double>(std::max<std::uint64_t>(total_samples, 1));
  if (max_seconds > 0) position = std::max(position, seconds / max_seconds);
  return std::clamp(position, 0.0, 1.0);
}

double lr_scale(const TrainConfig& train, double position, double epochs_done) {
  const double decay = std::pow(train.lr_decay, epochs_done);
  if (train.lr_schedule == LrSchedule::kConstant) return decay;
  return decay * (1.0 - (1.0 - train.lr_final) * position);
}

bool FitRun::done() const {
  return p_.samples >= total_ || (options_.stop && options_.stop->load()) ||
         (train_.max_seconds > 0 && p_.seconds >= train_.max_seconds) ||
         (options_.patience && p_.since_best >= options_.patience);
}

void FitRun::validate_now() {
  if (options_.score) {
    p_.valid = options_.score(*options_.validation, 0, options_.propensity);
  } else {
    EvalOptions eval;
    eval.propensity = options_.propensity;
    p_.valid =
        evaluate(*borrow_predictor(net_, EvalMode::kExact, nullptr), *options_.validation, eval);
  }
  p_.validated = true;
  p_.validated_samples = p_.samples;
  const double score = best_score(p_.valid, options_.best_by);
  p_.best = !p_.has_best || score > p_.best_score;
  if (p_.best) {
    p_.has_best = true;
    p_.best_score = score;
    p_.best_samples = p_.samples;
    p_.best_epoch = p_.epoch;
    p_.since_best = 0;
  } else {
    ++p_.since_best;
  }
}

void FitRun::test_now() {
  p_.evaluated = true;
  if (options_.score) {
    p_.eval = options_.score(*options_.test, train_.eval_points, options_.propensity);
    return;
  }
  // Sampled mode scores what the model's sampled predictions would at this point: through
  // inference tables over the rows as they are now. The training sampler cannot stand in: its
  // candidates are shared by the batch (or, before its first tables, uniform), not retrieved per
  // query.
  std::unique_ptr<OutputSampler> tables;
  if (options_.eval_mode == EvalMode::kSampled)
    tables = make_inference_lsh_sampler(Config{net_.config(), train_}, net_);
  EvalOptions eval;
  eval.max_points = train_.eval_points;
  eval.propensity = options_.propensity;
  p_.eval =
      evaluate(*borrow_predictor(net_, options_.eval_mode, tables.get()), *options_.test, eval);
}

void FitRun::evaluate_now(bool test) {
  test = test && options_.test;
  if (!test && !options_.validation) return;
  const auto t = std::chrono::steady_clock::now();
  if (options_.validation) validate_now();
  if (test) test_now();
  if (options_.on_progress) options_.on_progress(p_);
  if (p_.best && options_.on_best) options_.on_best(p_);
  p_.evaluated = p_.validated = p_.best = false;
  p_.eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

BatchResult FitRun::step() {
  const std::uint64_t pos = p_.samples % n_;
  if (p_.samples / n_ != epoch_) {
    epoch_ = p_.samples / n_;
    order_ = data::shuffled_order(n_, derive_seed(train_.seed, epoch_));
  }
  const std::uint64_t take = std::min<std::uint64_t>({train_.batch, n_ - pos, total_ - p_.samples});
  inputs_.clear();
  labels_.clear();
  for (std::uint64_t i = pos; i < pos + take; ++i) {
    inputs_.push_back(train_set_.features(order_[i]));
    labels_.push_back(train_set_.labels(order_[i]));
  }
  trainer_.set_lr_scale(
      lr_scale(train_, schedule_position(p_.samples, total_, p_.seconds, train_.max_seconds),
               static_cast<double>(p_.samples) / static_cast<double>(n_)));
  const BatchResult r = trainer_.train_batch(inputs_, labels_);
  if (options_.on_batch) options_.on_batch(inputs_);
  p_.samples += take;
  run_samples_ += take;
  p_.batches = trainer_.batches();
  loss_avg_ = std::isnan(loss_avg_) ? r.loss : 0.98 * loss_avg_ + 0.02 * r.loss;
  p_.loss = loss_avg_;
  p_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count() -
               p_.eval_seconds;
  p_.epoch = static_cast<double>(p_.samples) / n_;
  p_.samples_per_second = p_.seconds > 0 ? run_samples_ / p_.seconds : 0;
  const double by_samples =
      p_.samples_per_second > 0 ? (total_ - p_.samples) / p_.samples_per_second : 0;
  p_.eta_seconds =
      train_.max_seconds > 0 ? std::min(by_samples, train_.max_seconds - p_.seconds) : by_samples;
  if (options_.on_progress) options_.on_progress(p_);
  const bool epoch_end = p_.samples % n_ == 0;
  if ((train_.eval_every && p_.batches % train_.eval_every == 0) ||
      (!train_.eval_every && epoch_end))
    evaluate_now(true);
  return r;
}

const FitProgress& FitRun::finish() {
  // A run cut off by its time budget, or whose last batch was no evaluation point, is judged too.
  if (options_.validation && p_.validated_samples != p_.samples && run_samples_ > 0 &&
      !(options_.stop && options_.stop->load()))
    evaluate_now(false);
  net_.build_hidden_samplers(train_);
  net_.wide.end_training();  // 390 MB at amazon670k that a trained model no longer needs
  return p_;
}

FitProgress fit(Network& net, Trainer& trainer, const data::Dataset& train_set,
                const TrainConfig& train, const FitOptions& options) {
  FitRun run(net, trainer, train_set, train, options);
  while (!run.done()) run.step();
  return run.finish();
}

}  // namespace glide::engine
