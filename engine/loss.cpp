#include "engine/loss.h"

#include <algorithm>
#include <cmath>

namespace glide::engine {

namespace {

// Softmax cross-entropy against the uniform distribution over the sample's labels.
class SoftmaxLoss final : public Loss {
 public:
  LossKind kind() const override { return LossKind::kSoftmax; }

  double gradient(const SampleLogits& s, float scale, const Kernels& k,
                  std::vector<float>& buf) const override {
    const std::size_t n = s.slots.size();
    if (s.labels.empty()) {  // nothing to learn from a point without labels
      for (std::uint32_t slot : s.slots) s.z[slot] = 0;
      return 0;
    }
    buf.resize(n);
    for (std::size_t i = 0; i < n; ++i) buf[i] = s.z[s.slots[i]];
    if (!s.corrections.empty()) {
      // Negatives are corrected for how likely they were to be sampled; a sample's own labels
      // are certain candidates.
      for (std::size_t c = 0; c < s.corrections.size(); ++c)
        buf[s.first_corrected + c] += s.corrections[c];
      for (std::uint32_t p : s.labels) buf[p] = s.z[s.slots[p]];
    }
    const float mx = k.max(buf.data(), n);
    const float sum = k.exp_shift_sum(buf.data(), n, mx);
    const float inv_sum = 1.0f / sum, target = 1.0f / static_cast<float>(s.labels.size());
    double loss = 0;
    for (std::size_t i = 0; i < n; ++i) s.z[s.slots[i]] = buf[i] * inv_sum * scale;
    for (std::uint32_t p : s.labels) {
      loss -= target * std::log(std::max(buf[p] * inv_sum, 1e-30f));
      s.z[s.slots[p]] -= target * scale;
    }
    return loss;
  }

  float probability(float score, float max, double sum) const override {
    return static_cast<float>(std::exp(score - max) / sum);
  }
};

// One-vs-all: -log p on labels, -log(1-p) elsewhere, as softplus terms.
class SigmoidLoss final : public Loss {
 public:
  LossKind kind() const override { return LossKind::kSigmoid; }

  double gradient(const SampleLogits& s, float scale, const Kernels&,
                  std::vector<float>&) const override {
    double loss = 0;
    for (std::uint32_t p : s.labels) loss -= s.z[s.slots[p]];  // softplus(-z) = softplus(z) - z
    for (std::uint32_t slot : s.slots) {
      const float z = s.z[slot];
      loss += std::max(z, 0.0f) + std::log1p(std::exp(-std::fabs(z)));
      s.z[slot] = scale / (1.0f + std::exp(-z));
    }
    for (std::uint32_t p : s.labels) s.z[s.slots[p]] -= scale;
    return loss;
  }

  float probability(float score, float, double) const override {
    return 1.0f / (1.0f + std::exp(-score));
  }
};

}  // namespace

std::unique_ptr<Loss> make_loss(LossKind kind) {
  if (kind == LossKind::kSigmoid) return std::make_unique<SigmoidLoss>();
  return std::make_unique<SoftmaxLoss>();
}

}  // namespace glide::engine
