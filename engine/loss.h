// The output layer's loss: softmax cross-entropy over a sample's scored labels, or one-vs-all
// logistic (sigmoid) loss per label. Training takes each sample's loss and its gradient with
// respect to the logits from it; prediction takes the probability it reports for a label. A new
// loss is one class in loss.cpp plus one line in make_loss.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/active_pairs.h"
#include "engine/config.h"
#include "engine/kernels.h"

namespace glide::engine {

// One sample's scored neurons during training: neuron i's logit is z[slots[i]]; `labels` are the
// positions (indices into slots) of the sample's labels; corrections[k] is added to the logit at
// position first_corrected + k, except where that neuron is one of the sample's labels (the
// -log q correction of sampled negatives, engine/logq_correction.h).
struct SampleLogits {
  float* z = nullptr;
  std::span<const std::uint32_t> slots;
  std::span<const std::uint32_t> labels;
  std::span<const float> corrections;
  std::size_t first_corrected = 0;
};

// A training batch's scored logits as ActivePairs lays them out: sample s's own neurons at
// pairs->own_slots(s), the k-th shared neuron's logit for sample s at pairs->shared_base(k) + s.
// labels[s] are positions in s's scoring order (its own neurons, then the shared ones);
// corrections[k] is shared neuron k's correction (as in SampleLogits).
struct BatchLogits {
  float* z = nullptr;
  const ActivePairs* pairs = nullptr;
  std::span<const std::vector<std::uint32_t>> labels;
  std::span<const float> corrections;
};

class Loss {
 public:
  virtual ~Loss() = default;
  virtual LossKind kind() const = 0;
  // Replaces the sample's logits by scale x d loss / d logit and returns its loss (0 for a
  // sample the loss cannot learn from). `buf` is scratch. Safe from many threads on distinct
  // samples.
  virtual double gradient(const SampleLogits& s, float scale, const Kernels& k,
                          std::vector<float>& buf) const = 0;
  // gradient() over a whole batch, in parallel: losses[s] is sample s's. This one goes sample by
  // sample; a loss may go along the shared neurons' contiguous logits instead.
  virtual void batch_gradient(const BatchLogits& b, float scale, const Kernels& k,
                              std::span<double> losses) const;
  // The probability reported for a label of score `score`, given the softmax normalizer of the
  // labels scored for the sample: their largest score `max` and the sum of exp(score - max).
  virtual float probability(float score, float max, double sum) const = 0;
};

std::unique_ptr<Loss> make_loss(LossKind kind);

}  // namespace glide::engine
