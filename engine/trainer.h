// One training step over a mini-batch, processed layer by layer and neuron by neuron: each
// weight row active anywhere in the batch is read once for the forward pass and once for a
// backward pass that applies its Adam update on the spot (no gradient buffer the size of a layer).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <tbb/enumerable_thread_specific.h>

#include "engine/active_pairs.h"
#include "engine/loss.h"
#include "engine/network.h"
#include "engine/output_ops.h"
#include "engine/output_sampler.h"
#include "engine/shard_exchange.h"

namespace glide::engine {

// Wall seconds spent in each phase, summed over batches.
struct PhaseTimes {
  double select = 0;    // hashing and active-set sampling of the output layer
  double forward = 0;   // hidden layers and active output logits
  double loss = 0;      // softmax / sigmoid and its gradient
  double backward = 0;  // backward passes with their fused Adam updates
  double refresh = 0;   // hash table refreshes
  double total() const { return select + forward + loss + backward + refresh; }
};

struct BatchResult {
  double loss = 0;  // mean over the batch's samples with labels
  std::size_t samples = 0;
  std::size_t active_pairs = 0;     // (sample, output neuron) pairs computed
  std::size_t distinct_active = 0;  // distinct output neurons touched
};

class Trainer {
 public:
  // `sampler` chooses active output neurons; null trains the exact (dense) output layer. The
  // network's output layer is converted to the storage config.precision needs.
  Trainer(Network& net, const TrainConfig& config, std::unique_ptr<OutputSampler> sampler);

  // One step on a batch of inputs and their labels. Runs on the current TBB arena.
  BatchResult train_batch(std::span<const data::SparseView> inputs,
                          std::span<const std::span<const std::uint32_t>> labels);

  const PhaseTimes& times() const { return times_; }
  OutputSampler* sampler() { return sampler_.get(); }
  std::uint64_t batches() const { return batches_; }
  void set_batches(std::uint64_t b) { batches_ = b; }
  // The learning rate of the next batches is train.lr times this (a schedule, engine/fit.h).
  void set_lr_scale(double s) { lr_scale_ = s; }
  // Label-sharded training (engine/shard_exchange.h): the network's output layer is this rank's
  // shard, the batch's labels are the shard's (local ids); the softmax normaliser and the last
  // hidden layer's gradient are reduced over every shard through `x`. Null: one process.
  void set_exchange(ShardExchange* x) { exchange_ = x; }

 private:
  void select_active(std::span<const std::span<const std::uint32_t>> labels);
  double output_loss(std::span<const std::span<const std::uint32_t>> labels);
  // output_loss over every shard's logits (engine/trainer_sharded.cpp).
  double sharded_output_loss(std::size_t B);
  void backward_output(const AdamStep& step);
  // The wide layer: adds the batch's wide scores to its logits, and after the loss, its step.
  void forward_wide(std::span<const data::SparseView> inputs);
  void backward_wide(float lr);
  void backward_hidden(std::size_t l, const AdamStep& step);
  void backward_sampled_hidden(std::size_t l, const AdamStep& step);
  void backward_after_sampled(std::size_t l, const AdamStep& step);
  void backward_input(std::span<const data::SparseView> inputs, const AdamStep& step);
  // Applies gradient g to n weights with optimizer o (m: Adam's first moments; v: Adam's second
  // moments or Adagrad's sums), or with the hidden layers' configured optimizer.
  void update(Optimizer o, float* w, float* m, float* v, const float* g, std::size_t n,
              const AdamStep& step) const;
  void update(float* w, float* m, float* v, const float* g, std::size_t n,
              const AdamStep& step) const;
  float* thread_grad_buffer(std::size_t floats);
  void reduce_grad_buffers(float* out, std::size_t floats);

  Network& net_;
  TrainConfig config_;
  std::unique_ptr<OutputSampler> sampler_;
  std::unique_ptr<OutputLayerOps> out_;  // the output layer's rows in the configured precision
  std::unique_ptr<Loss> loss_;           // the network's loss over each sample's logits
  const Kernels& k_;
  PhaseTimes times_;
  std::uint64_t batches_ = 0;
  double lr_scale_ = 1.0;
  ShardExchange* exchange_ = nullptr;

  HiddenActivations acts_;
  std::vector<AlignedArray<float>> grads_;  // d loss / d hidden activation, per layer
  std::vector<std::vector<std::uint32_t>> active_;
  std::vector<std::span<const std::uint32_t>> active_views_;
  std::vector<std::vector<std::uint32_t>> label_pos_;  // positions of the labels in active_[s]
  ActivePairs pairs_;
  std::vector<float> z_;            // logits, then their gradients, one per active pair
  std::vector<float> packed_grad_;  // a sampled layer's active-input gradients, packed
  ActivePairs feature_pairs_;
  std::vector<float> feature_values_;
  std::vector<std::span<const std::uint32_t>> feature_views_;
  std::vector<std::uint32_t> all_rows_;
  std::vector<std::uint32_t> all_neurons_;
  std::span<const std::uint32_t> shared_;  // the batch's shared neurons (pairs_' order)
  WideBatch wide_batch_;                   // the batch's inputs by feature

  struct ThreadScratch {
    std::uint64_t generation = ~std::uint64_t{0};
    AlignedArray<float> grad;  // this thread's share of a hidden-layer gradient
    std::vector<float> gw, buf;
    std::vector<std::uint32_t> slots;
  };
  tbb::enumerable_thread_specific<ThreadScratch> scratch_;
  std::uint64_t generation_ = 0;
};

}  // namespace glide::engine
