// The (sample, neuron) pairs a batch computes in the output layer, indexed both ways: neuron
// by neuron, so each weight row is read once per batch however many samples activate it, and
// sample by sample, for the softmax over each sample's active set.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace glide::engine {

class ActivePairs {
 public:
  // Indexes the per-sample active lists (`active[s]` holds sample s's neuron ids, all below
  // `num_neurons`; a repeated id gets a slot per occurrence). Counting sort: O(pairs +
  // num_neurons).
  void build(std::span<const std::span<const std::uint32_t>> active, std::uint32_t num_neurons);
  // Every sample activates every neuron (exact softmax).
  void build_dense(std::uint32_t batch, std::uint32_t num_neurons);

  std::size_t num_pairs() const { return rows_.size(); }
  std::size_t batch() const { return sample_offsets_.size() - 1; }
  // The distinct active neurons, ascending.
  std::span<const std::uint32_t> neurons() const { return neurons_; }
  // Pairs of the i-th distinct neuron occupy slots [neuron_begin(i), neuron_begin(i+1)).
  std::uint64_t neuron_begin(std::size_t i) const { return neuron_offsets_[i]; }
  // The sample of each slot (neuron-major order).
  const std::uint32_t* rows() const { return rows_.data(); }
  // Sample s's k-th active neuron lives in slot sample_slots(s)[k].
  std::span<const std::uint32_t> sample_slots(std::size_t s) const {
    return {sample_slots_.data() + sample_offsets_[s], sample_offsets_[s + 1] - sample_offsets_[s]};
  }

 private:
  std::vector<std::uint32_t> neurons_;
  std::vector<std::uint64_t> neuron_offsets_;
  std::vector<std::uint32_t> rows_;
  std::vector<std::uint64_t> sample_offsets_{0};
  std::vector<std::uint32_t> sample_slots_;
  std::vector<std::uint32_t> cursor_;  // per-neuron scratch, kept to avoid reallocating
};

}  // namespace glide::engine
