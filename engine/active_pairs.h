// The (sample, neuron) pairs a batch computes in a layer, indexed both ways: neuron by neuron, so
// each weight row is read once per batch however many samples activate it, and sample by sample,
// for the softmax over each sample's active set. Neurons every sample activates (the batch's
// labels, shared negatives, or all of them in a dense layer) are "shared": their pairs need no
// per-pair bookkeeping at all.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace glide::engine {

class ActivePairs {
 public:
  // `shared` lists neurons active for all `batch` samples; `own[s]` lists sample s's other active
  // neurons, none of them shared (a repeated id gets a slot per occurrence). Ids < num_neurons.
  // Counting sort: O(pairs of own neurons + num_neurons + shared pairs / threads).
  void build(std::span<const std::span<const std::uint32_t>> own,
             std::span<const std::uint32_t> shared, std::uint32_t num_neurons, std::uint32_t batch);

  std::size_t num_pairs() const { return rows_.size(); }
  std::size_t batch() const { return batch_; }
  // The distinct active neurons, ascending.
  std::span<const std::uint32_t> neurons() const { return neurons_; }
  // Pairs of the i-th distinct neuron occupy slots [neuron_begin(i), neuron_begin(i+1)).
  std::uint64_t neuron_begin(std::size_t i) const { return neuron_offsets_[i]; }
  // The sample of each slot (neuron-major order; a shared neuron's samples are 0..batch-1).
  const std::uint32_t* rows() const { return rows_.data(); }
  // Sample s's k-th own neuron lives in slot own_slots(s)[k].
  std::span<const std::uint32_t> own_slots(std::size_t s) const {
    return {own_slots_.data() + own_offsets_[s], own_offsets_[s + 1] - own_offsets_[s]};
  }
  // The k-th shared neuron's pair with sample s lives in slot shared_base(k) + s.
  std::uint64_t shared_base(std::size_t k) const { return shared_base_[k]; }
  std::size_t num_shared() const { return shared_base_.size(); }
  std::span<const std::uint64_t> shared_bases() const { return shared_base_; }
  // 1 + the position of `neuron` in the shared list, or 0 when it is not shared.
  std::uint32_t shared_index(std::uint32_t neuron) const { return shared_index_[neuron]; }

 private:
  std::uint32_t batch_ = 0;
  std::vector<std::uint32_t> neurons_;
  std::vector<std::uint64_t> neuron_offsets_;
  std::vector<std::uint32_t> rows_;
  std::vector<std::uint64_t> own_offsets_{0};
  std::vector<std::uint32_t> own_slots_;
  std::vector<std::uint64_t> shared_base_;
  std::vector<std::uint32_t> cursor_;        // per neuron: pair count, then next free slot
  std::vector<std::uint32_t> shared_index_;  // per neuron: 1 + index in `shared`, or 0
  std::vector<std::uint64_t> bits_;          // per neuron: active this batch
  bool clean_ = false;  // only neurons_' entries of the three arrays above are set
};

}  // namespace glide::engine
