// Sampled softmax over a candidate set is a biased estimate of the full softmax unless each
// negative's logit is corrected by -log q_j, q_j the probability that neuron j is a candidate
// (Bengio & Senecal 2008; Yi et al. 2019 for in-batch negatives with streaming frequencies).
// A batch's shared candidates are its labels (a popularity-biased sample: label j is present
// with probability 1 - (1 - f_j)^(B-1) for any other sample of the batch, f_j its frequency,
// the training set's when known (set_counts), else estimated from the labels seen so far) and U
// uniform draws (q = U / N). Without the
// correction rare labels are under-sampled negatives and frequent ones over-pushed, and a
// sampler mixing uniform and LSH candidates weighs each uniform draw as one label where it
// stands for N / U of them.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace glide::engine {

class LogQCorrection {
 public:
  explicit LogQCorrection(std::uint32_t num_neurons) : counts_(num_neurons, 0) {}

  // The label frequencies of the whole training set: `counts` per neuron over `points` points.
  // From then on observe() counts nothing, so the corrections depend on the training set alone
  // (not on how far training has gone: a resumed run repeats an uninterrupted one exactly).
  void set_counts(std::span<const std::uint32_t> counts, std::uint64_t points);
  // Counts a batch's labels (call once per batch, before shared_corrections()).
  void observe(std::span<const std::span<const std::uint32_t>> labels);

  // out[k] = -log q of shared[k], for a batch of `batch` samples whose shared set holds
  // `uniform` uniform draws over the neurons that are not batch labels.
  void shared_corrections(std::span<const std::uint32_t> shared, std::size_t batch,
                          std::size_t uniform, std::size_t num_batch_labels,
                          std::vector<float>& out) const;

  std::uint64_t samples() const { return samples_; }

 private:
  std::vector<std::uint32_t> counts_;
  std::uint64_t samples_ = 0;
  bool fixed_ = false;  // set_counts() was called
};

}  // namespace glide::engine
