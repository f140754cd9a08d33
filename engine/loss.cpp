#include "engine/loss.h"

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace glide::engine {

namespace {

// Sample s's slots in scoring order: its own neurons, then the shared ones.
void slots_of(const ActivePairs& pairs, std::size_t s, std::vector<std::uint32_t>& slots) {
  const auto own = pairs.own_slots(s);
  slots.assign(own.begin(), own.end());
  for (const std::uint64_t base : pairs.shared_bases())
    slots.push_back(static_cast<std::uint32_t>(base + s));
}

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

  // Column by column: a block of samples at a time goes down the shared neurons' rows (contiguous
  // over samples) in three SIMD passes, max, exp and scale, where gathering each sample's logits
  // would touch a cache line per logit.
  void batch_gradient(const BatchLogits& b, float scale, const Kernels& k,
                      std::span<double> losses) const override {
    const ActivePairs& pairs = *b.pairs;
    const std::size_t B = pairs.batch(), K = pairs.num_shared();
    const float* corrections = b.corrections.empty() ? nullptr : b.corrections.data();
    const std::uint64_t* bases = pairs.shared_bases().data();
    struct Block {
      std::vector<float> max, sum, factor;
      std::vector<std::uint64_t> bases;
    };
    tbb::enumerable_thread_specific<Block> blocks;
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 16), [&](const auto& r) {
      const std::size_t s0 = r.begin(), n = r.size();
      Block& blk = blocks.local();
      blk.max.assign(n, -std::numeric_limits<float>::infinity());
      blk.sum.assign(n, 0.0f);
      blk.factor.assign(n, 0.0f);
      float* z = b.z + s0;  // the block's first column
      // A sample's labels are certain candidates: their shared logits are left uncorrected, by
      // taking the correction off first (the passes add it back).
      if (corrections)
        for (std::size_t s = s0; s < r.end(); ++s) {
          const std::size_t own = pairs.own_slots(s).size();
          for (const std::uint32_t p : b.labels[s])
            if (p >= own) b.z[bases[p - own] + s] -= corrections[p - own];
        }
      for (std::size_t s = s0; s < r.end(); ++s)
        for (const std::uint32_t slot : pairs.own_slots(s))
          blk.max[s - s0] = std::max(blk.max[s - s0], b.z[slot]);
      k.rows_max(z, bases, corrections, K, n, blk.max.data());
      for (std::size_t s = s0; s < r.end(); ++s)
        for (const std::uint32_t slot : pairs.own_slots(s)) {
          b.z[slot] = std::exp(b.z[slot] - blk.max[s - s0]);
          blk.sum[s - s0] += b.z[slot];
        }
      k.rows_exp_sum(z, bases, corrections, K, n, blk.max.data(), blk.sum.data());
      // Now every logit holds exp(logit - max): the loss is read at the labels before scaling.
      for (std::size_t s = s0; s < r.end(); ++s) {
        const auto& labels = b.labels[s];
        losses[s] = 0;
        if (labels.empty()) continue;  // nothing to learn from a point without labels: factor 0
        const std::size_t own = pairs.own_slots(s).size();
        const float inv_sum = 1.0f / blk.sum[s - s0];
        const float target = 1.0f / static_cast<float>(labels.size());
        for (const std::uint32_t p : labels) {
          const float e = b.z[p < own ? pairs.own_slots(s)[p] : bases[p - own] + s];
          losses[s] -= target * std::log(std::max(e * inv_sum, 1e-30f));
        }
        blk.factor[s - s0] = inv_sum * scale;
      }
      for (std::size_t s = s0; s < r.end(); ++s)
        for (const std::uint32_t slot : pairs.own_slots(s)) b.z[slot] *= blk.factor[s - s0];
      k.rows_scale(z, bases, K, n, blk.factor.data());
      for (std::size_t s = s0; s < r.end(); ++s) {
        const auto& labels = b.labels[s];
        if (labels.empty()) continue;
        const std::size_t own = pairs.own_slots(s).size();
        const float step = scale / static_cast<float>(labels.size());
        for (const std::uint32_t p : labels)
          b.z[p < own ? pairs.own_slots(s)[p] : bases[p - own] + s] -= step;
      }
    });
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

void Loss::batch_gradient(const BatchLogits& b, float scale, const Kernels& k,
                          std::span<double> losses) const {
  struct Scratch {
    std::vector<std::uint32_t> slots;
    std::vector<float> buf;
  };
  tbb::enumerable_thread_specific<Scratch> scratch;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, b.pairs->batch(), 4), [&](const auto& r) {
    Scratch& t = scratch.local();
    for (std::size_t s = r.begin(); s < r.end(); ++s) {
      slots_of(*b.pairs, s, t.slots);
      const SampleLogits logits{.z = b.z,
                                .slots = t.slots,
                                .labels = b.labels[s],
                                .corrections = b.corrections,
                                .first_corrected = b.pairs->own_slots(s).size()};
      losses[s] = gradient(logits, scale, k, t.buf);
    }
  });
}

std::unique_ptr<Loss> make_loss(LossKind kind) {
  if (kind == LossKind::kSigmoid) return std::make_unique<SigmoidLoss>();
  return std::make_unique<SoftmaxLoss>();
}

}  // namespace glide::engine
