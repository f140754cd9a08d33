// The training loop: shuffled epochs of mini-batches, periodic evaluation, progress reporting
// through callbacks, a time budget and a stop flag (Ctrl-C), resumable at any batch.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "data/dataset.h"
#include "engine/evaluator.h"
#include "engine/setup_log.h"
#include "engine/trainer.h"
#include "engine/validation.h"
#include "engine/wide_layer.h"

namespace glide::engine {

struct FitProgress {
  double epoch = 0;           // fractional epochs done
  std::uint64_t batches = 0;  // since the start of training (resumes included)
  std::uint64_t samples = 0;  // likewise
  // Training time of this run: wall time less the evaluations', so that rates and time budgets
  // mean the same with and without --test.
  double seconds = 0;
  double eval_seconds = 0;        // wall time of this run's evaluations (and their reports)
  double loss = 0;                // moving average of batch losses
  double samples_per_second = 0;  // this run, over its training time
  double eta_seconds = 0;         // training time left
  bool evaluated = false;         // `eval` is from a test evaluation done at this point
  EvalResult eval;
  // With FitOptions::validation: `valid` is from a validation evaluation done at this point, and
  // `best` says it is the run's best so far.
  bool validated = false;
  bool best = false;
  EvalResult valid;
  double best_score = 0;           // the best validation score (FitOptions::best_by) so far
  std::uint64_t best_samples = 0;  // where it was reached (FitProgress::samples)
  double best_epoch = 0;
  std::uint64_t validated_samples = 0;  // where the last validation was
  std::uint32_t since_best = 0;         // validations after the best one
  bool has_best = false;
};

struct FitOptions {
  const data::Dataset* test = nullptr;  // evaluated every train.eval_every batches and at the end
  // Sampled: through inference LSH tables over the rows at each evaluation, built in its time.
  EvalMode eval_mode = EvalMode::kExact;
  // The labels' inverse propensities (InversePropensity::of the training set): the evaluations
  // also score PSP@k. Must outlive the run.
  const InversePropensity* propensity = nullptr;
  // Called after every batch (cheap callers only) and after each evaluation.
  std::function<void(const FitProgress&)> on_progress;
  // Called after every batch with the batch's inputs, the weights already updated (learned
  // caches train on them, cache/training_caches.h).
  std::function<void(std::span<const data::SparseView>)> on_batch;
  // A new wide layer's reference norm (WideOptions::reference_norm; 0: the training set's).
  double wide_reference_norm = 0;
  // The label neighbours of a choice made before the run (check_wide's), for a new wide layer's
  // build; null: found in the build.
  const LabelNeighbours* wide_neighbours = nullptr;
  // Called once when a new wide layer's norm power was chosen on held-out training points.
  std::function<void(const WideStartChoice&)> on_wide_start;
  // The stages of a new wide layer's setup as they end (its start's choice, its build).
  SetupLog setup_log;
  // Called once the model is set up (a new wide layer built), just before the training clock
  // starts: progress lines time the training from here, as the summary does.
  std::function<void()> on_start;
  // Points held out of the training set (engine/validation.h), scored in full at every
  // evaluation point (train.eval_every, else each epoch) and at the end: the run's best is
  // tracked, reported through on_best, and `patience` validations in a row without a new best
  // end the run. Must outlive the run.
  const data::Dataset* validation = nullptr;
  // Scores the first `max_points` points (0: all) of the test or validation set in the caller's
  // way, exact, with `propensity` (a label-sharded run: collectively, over every rank's shard);
  // null: the network through a predictor (eval_mode for the test set, exact for validation).
  std::function<EvalResult(const data::Dataset&, std::size_t max_points, const InversePropensity*)>
      score;
  BestBy best_by = BestBy::kP1P5;  // kPsp5 needs `propensity`
  std::uint32_t patience = 0;      // 0: train every planned epoch
  // Called between batches, right after a validation that is the best so far (the network as it
  // scored): the caller keeps that model (the CLI saves it). Its time counts as evaluation time.
  std::function<void(const FitProgress&)> on_best;
  const std::atomic<bool>* stop = nullptr;  // set from a signal handler to stop after the batch
  std::uint64_t start_samples = 0;          // resume: samples already trained
};

// One run of the training loop, a batch at a time: fit() steps one run to its end; callers that
// interleave several runs step each in turn (benchmarks train networks in lockstep, batch by
// batch, so that load from elsewhere on the machine hits every network alike). Runs of the same
// training set, seed, batch and epochs see the same batches in the same order.
class FitRun {
 public:
  // Checks the training set against the network; net, trainer and train_set must outlive the
  // run (train and options are copied).
  FitRun(Network& net, Trainer& trainer, const data::Dataset& train_set, const TrainConfig& train,
         const FitOptions& options);

  // True when training is over: train.epochs done, train.max_seconds of training time
  // (evaluations excluded) passed, *stop set, or `patience` validations without a new best.
  bool done() const;
  // Trains the next batch, reports progress and evaluates when due. Call only while !done().
  BatchResult step();
  const FitProgress& progress() const { return p_; }
  // How a new wide layer's start was chosen (engine/wide_layer.h); empty when it was not built
  // here or its norm power was given.
  const std::optional<WideStartChoice>& wide_start() const { return wide_start_; }
  // Ends the run: a last validation where the run did not end on one (unless *stop was set),
  // the sampled hidden layers' tables over the final weights (what a reload of the saved model
  // builds, so predictions now and after a reload agree), and the wide layer's training copy
  // freed.
  const FitProgress& finish();

 private:
  // Validates (with FitOptions::validation) and, with `test`, scores the test points; then
  // reports.
  void evaluate_now(bool test);
  void validate_now();
  void test_now();

  Network& net_;
  Trainer& trainer_;
  const data::Dataset& train_set_;
  const TrainConfig train_;
  const FitOptions options_;
  std::size_t n_ = 0;
  std::uint64_t total_ = 0;  // samples at the end of train.epochs
  std::chrono::steady_clock::time_point t0_;
  FitProgress p_;
  std::uint64_t epoch_ = 0;
  std::vector<std::size_t> order_;  // visiting order of epoch_
  std::vector<data::SparseView> inputs_;
  std::vector<std::span<const std::uint32_t>> labels_;
  std::uint64_t run_samples_ = 0;
  double loss_avg_;
  std::optional<WideStartChoice> wide_start_;
};

// Fails unless `train_set` has points and fits a network of config `net`.
void check_training_set(const data::Dataset& train_set, const NetworkConfig& net);

// Where a run is in its learning-rate schedule, from 0 at the start to 1 at the end: the share
// of the planned samples trained or of the time budget (max_seconds of training time, 0: none)
// spent, whichever is further, so that a run cut off by its budget ends at the end of its
// schedule, not at a high lr mid-way. A resumed run's time budget is its own.
double schedule_position(std::uint64_t samples, std::uint64_t total_samples, double seconds,
                         double max_seconds);
// The learning rate at `position` of the schedule after `epochs_done` epochs (fractional), as a
// multiple of train.lr (and of train.output_lr).
double lr_scale(const TrainConfig& train, double position, double epochs_done);

// Trains until train.epochs are done, train.max_seconds pass, or *stop is set. The visiting
// order of epoch e is shuffled_order(points, derive_seed(train.seed, e)).
FitProgress fit(Network& net, Trainer& trainer, const data::Dataset& train_set,
                const TrainConfig& train, const FitOptions& options);

}  // namespace glide::engine
