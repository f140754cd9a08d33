#include "engine/fit.h"

#include <chrono>
#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "data/shuffle.h"

namespace glide::engine {

FitProgress fit(Network& net, Trainer& trainer, const data::Dataset& train_set,
                const TrainConfig& train, const FitOptions& options) {
  const std::size_t n = train_set.num_points();
  if (n == 0) fail("training set is empty");
  if (train_set.num_features > net.config().num_features ||
      train_set.num_labels > net.config().num_labels)
    fail("training set dimensions (" + std::to_string(train_set.num_features) + " features, " +
         std::to_string(train_set.num_labels) + " labels) exceed the model's (" +
         std::to_string(net.config().num_features) + ", " +
         std::to_string(net.config().num_labels) + ")");
  const std::uint64_t total = static_cast<std::uint64_t>(std::llround(train.epochs * n));
  const auto t0 = std::chrono::steady_clock::now();
  FitProgress p;
  p.samples = options.start_samples;
  p.batches = trainer.batches();
  std::uint64_t epoch = p.samples / n;
  std::vector<std::size_t> order = data::shuffled_order(n, derive_seed(train.seed, epoch));
  std::vector<data::SparseView> inputs;
  std::vector<std::span<const std::uint32_t>> labels;
  std::uint64_t run_samples = 0;
  double loss_avg = NAN;

  auto evaluate_now = [&] {
    if (!options.test) return;
    p.eval = evaluate(net, *options.test, options.eval_mode, trainer.sampler(), train.eval_points);
    p.evaluated = true;
    if (options.on_progress) options.on_progress(p);
    p.evaluated = false;
  };

  while (p.samples < total) {
    if (options.stop && options.stop->load()) break;
    if (train.max_seconds > 0 && p.seconds >= train.max_seconds) break;
    const std::uint64_t pos = p.samples % n;
    if (p.samples / n != epoch) {
      epoch = p.samples / n;
      order = data::shuffled_order(n, derive_seed(train.seed, epoch));
    }
    const std::uint64_t take = std::min<std::uint64_t>({train.batch, n - pos, total - p.samples});
    inputs.clear();
    labels.clear();
    for (std::uint64_t i = pos; i < pos + take; ++i) {
      inputs.push_back(train_set.features(order[i]));
      labels.push_back(train_set.labels(order[i]));
    }
    if (train.lr_schedule == LrSchedule::kLinear)
      trainer.set_lr_scale(1.0 - (1.0 - train.lr_final) * static_cast<double>(p.samples) /
                                     static_cast<double>(std::max<std::uint64_t>(total, 1)));
    const BatchResult r = trainer.train_batch(inputs, labels);
    if (options.on_batch) options.on_batch(inputs);
    p.samples += take;
    run_samples += take;
    p.batches = trainer.batches();
    loss_avg = std::isnan(loss_avg) ? r.loss : 0.98 * loss_avg + 0.02 * r.loss;
    p.loss = loss_avg;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    p.epoch = static_cast<double>(p.samples) / n;
    p.samples_per_second = p.seconds > 0 ? run_samples / p.seconds : 0;
    const double by_samples =
        p.samples_per_second > 0 ? (total - p.samples) / p.samples_per_second : 0;
    p.eta_seconds =
        train.max_seconds > 0 ? std::min(by_samples, train.max_seconds - p.seconds) : by_samples;
    if (options.on_progress) options.on_progress(p);
    const bool epoch_end = p.samples % n == 0;
    if ((train.eval_every && p.batches % train.eval_every == 0) || (!train.eval_every && epoch_end))
      evaluate_now();
  }
  // The sampled hidden layers' tables over the final weights: what a reload of the saved model
  // builds, so predictions now and after a reload agree.
  net.build_hidden_samplers(train);
  return p;
}

}  // namespace glide::engine
