// How the output layer chooses the neurons each sample computes: LSH tables over the weights
// (SLIDE), uniformly random negatives shared by a batch (plain sampled softmax), or all of them.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/config.h"
#include "engine/params.h"

namespace glide::engine {

class Network;

// A batch's activations at a sampler's input: sample s's row of `batch` starts at h + s * stride.
struct BatchActivations {
  const float* h = nullptr;
  std::size_t stride = 0;
  std::size_t batch = 0;
  const float* row(std::size_t s) const { return h + s * stride; }
};

class OutputSampler {
 public:
  virtual ~OutputSampler() = default;
  // Once per training batch, before its select() calls. `labels` are the batch's labels: they
  // join shared() so every sample also scores the others' labels (in-batch negatives push
  // popular labels down where they are wrong). `acts` are the batch's activations at the
  // sampler's input (the last hidden layer's for the output layer), for a sampler that chooses
  // shared neurons from them; a hidden layer's sampler is called before its input exists, with
  // none. Inference never calls it: without training the tables never change, and select() is
  // then safe from any number of threads.
  virtual void begin_batch(std::uint64_t /*batch_index*/,
                           std::span<const std::span<const std::uint32_t>> /*labels*/,
                           const BatchActivations& /*acts*/) {}
  // The neurons every sample of the current training batch computes: the batch's distinct
  // labels, then negatives shared by the batch. A shared row is read and updated once per batch.
  virtual std::span<const std::uint32_t> shared() const { return {}; }
  // The training set's label counts (`counts` per neuron over `points` points), for samplers that
  // correct their negatives by their sampling probability (engine/logq_correction.h).
  virtual void set_label_counts(std::span<const std::uint32_t> /*counts*/,
                                std::uint64_t /*points*/) {}
  // Empty, or one logit correction (-log q, engine/logq_correction.h) per shared() neuron, added
  // to its logit for the samples it is a negative of.
  virtual std::span<const float> shared_corrections() const { return {}; }
  // Fills `out` with this sample's own active neurons, none of them in shared(); `h` is its last
  // hidden activation. Safe to call from many threads at once.
  virtual void select(const float* h, std::vector<std::uint32_t>& out) = 0;
  // After a batch's update: the LSH sampler refreshes its tables from the layer's `rows` on its
  // schedule here.
  virtual void after_batch(const RowsF32& /*rows*/, std::uint64_t /*batch_index*/) {}
};

// The batch's labels plus `budget` uniformly random neurons drawn once per batch, all shared;
// `logq`: with their logit corrections.
std::unique_ptr<OutputSampler> make_random_sampler(std::uint32_t num_neurons, std::uint32_t budget,
                                                   std::uint64_t seed, bool logq = false);

// When a training sampler's first tables are built: at once, or at the first scheduled refresh
// (in the background like every refresh) when the output rows are still their random start,
// whose tables would retrieve labels no better than uniform draws do.
enum class FirstTables { kBuildNow, kAtFirstRefresh };

// LSH tables over the output layer's weight rows, built as `first_tables` says and refreshed on
// the schedule of `train` (re-insert every rebuild_every batches, growing; new hash functions
// every rehash_every samples), always in the background while training goes on. While training,
// the batch's labels and half the budget in uniform negatives are shared; the other half comes
// from the tables: each sample's own candidates (net.lsh_negatives "sample"), or, with "batch",
// the candidates retrieved by the most samples of the batch, shared too (ties in a random order
// seeded by the batch), so that every row is read once per batch. Until the first tables exist,
// uniform negatives fill the whole budget. Inference builds its tables at once.
std::unique_ptr<OutputSampler> make_lsh_sampler(const NetworkConfig& net, const TrainConfig& train,
                                                const RowsF32& output, bool training,
                                                FirstTables first_tables = FirstTables::kBuildNow);

// LSH tables for sampled inference over `output` (rows, read only while this builds them) with
// biases `bias`: each query scores the net.prior_fraction x budget labels of largest bias (the
// label prior the model learned), then the rest of the budget from the tables.
std::unique_ptr<OutputSampler> make_inference_lsh_sampler(const NetworkConfig& net,
                                                          const TrainConfig& train,
                                                          const RowsF32& output,
                                                          std::span<const float> bias);

// LSH tables over hidden layer l's weight rows (`weights`, l >= 1, net.hidden_sampled(l)), queried
// with layer l-1's activations. select() returns exactly the layer's budget of neurons (table
// candidates found in the most tables first, then random ones), the same for the same input.
// Refreshed on `train`'s schedule through after_batch().
std::unique_ptr<OutputSampler> make_hidden_sampler(const NetworkConfig& net, std::size_t l,
                                                   const TrainConfig& train,
                                                   const ParamMatrix& weights);

// The sampler `c` asks for while training (null for the dense output layer). `rows_trained`:
// the output rows have been trained before (a resumed or continued run), so LSH tables over
// them are worth building at once; a fresh network's wait for the first refresh.
std::unique_ptr<OutputSampler> make_training_sampler(const Config& c, const Network& net,
                                                     bool rows_trained);

// The distinct labels of a batch, in first-seen order, deduplicated with `stamp` (one entry per
// neuron) and `epoch` (bumped here).
void batch_labels(std::span<const std::span<const std::uint32_t>> labels,
                  std::vector<std::uint32_t>& stamp, std::uint32_t& epoch,
                  std::vector<std::uint32_t>& out);

// Active-set size for a layer of n neurons at the given sparsity (at least 1).
std::uint32_t sampling_budget(std::uint32_t n, double sparsity);

}  // namespace glide::engine
