// The training loop: shuffled epochs of mini-batches, periodic evaluation, progress reporting
// through callbacks, a time budget and a stop flag (Ctrl-C), resumable at any batch.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>

#include "data/dataset.h"
#include "engine/evaluator.h"
#include "engine/trainer.h"

namespace glide::engine {

struct FitProgress {
  double epoch = 0;               // fractional epochs done
  std::uint64_t batches = 0;      // since the start of training (resumes included)
  std::uint64_t samples = 0;      // likewise
  double seconds = 0;             // wall time of this run
  double loss = 0;                // moving average of batch losses
  double samples_per_second = 0;  // this run
  double eta_seconds = 0;
  bool evaluated = false;  // the fields below are from an evaluation done at this point
  EvalResult eval;
};

struct FitOptions {
  const data::Dataset* test = nullptr;  // evaluated every train.eval_every batches and at the end
  EvalMode eval_mode = EvalMode::kExact;
  // Called after every batch (cheap callers only) and after each evaluation.
  std::function<void(const FitProgress&)> on_progress;
  // Called after every batch with the batch's inputs, the weights already updated (learned
  // caches train on them, cache/training_caches.h).
  std::function<void(std::span<const data::SparseView>)> on_batch;
  const std::atomic<bool>* stop = nullptr;  // set from a signal handler to stop after the batch
  std::uint64_t start_samples = 0;          // resume: samples already trained
};

// Trains until train.epochs are done, train.max_seconds pass, or *stop is set. The visiting
// order of epoch e is shuffled_order(points, derive_seed(train.seed, e)).
FitProgress fit(Network& net, Trainer& trainer, const data::Dataset& train_set,
                const TrainConfig& train, const FitOptions& options);

}  // namespace glide::engine
