// The output loss of a label-sharded batch (Trainer::set_exchange): each rank holds the logits of
// its shard's active neurons. Softmax needs the normaliser over every shard: the per-sample max
// (one max-reduction), then the sum of exp(logit - max), the number of labels and the sum of the
// labels' logits (one sum-reduction); each rank then turns its own logits into gradients. The
// one-vs-all (sigmoid) loss needs nothing from the other shards but its reported mean.
#include "engine/trainer.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace glide::engine {

double Trainer::sharded_output_loss(std::size_t B) {
  const float inv_batch = 1.0f / static_cast<float>(B);
  const std::span<const float> corrections =
      sampler_ ? sampler_->shared_corrections() : std::span<const float>{};
  // Sample s's slots in scoring order: its own neurons, then the shared ones.
  const auto slots_of = [&](std::size_t s, std::vector<std::uint32_t>& slots) {
    const auto own = pairs_.own_slots(s);
    slots.assign(own.begin(), own.end());
    for (std::size_t k = 0; k < pairs_.num_shared(); ++k)
      slots.push_back(static_cast<std::uint32_t>(pairs_.shared_base(k) + s));
    return own.size();
  };
  const auto for_samples = [&](auto&& fn) {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 4),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                        ThreadScratch& t = scratch_.local();
                        for (std::size_t s = r.begin(); s < r.end(); ++s) fn(s, t);
                      });
  };

  if (loss_->kind() != LossKind::kSoftmax) {
    // [loss, has labels] per sample, summed over shards.
    std::vector<double> parts(2 * B, 0.0);
    for_samples([&](std::size_t s, ThreadScratch& t) {
      const std::size_t own = slots_of(s, t.slots);
      const SampleLogits logits{.z = z_.data(),
                                .slots = t.slots,
                                .labels = label_pos_[s],
                                .corrections = corrections,
                                .first_corrected = own};
      parts[2 * s] = loss_->gradient(logits, inv_batch, k_, t.buf);
      parts[2 * s + 1] = static_cast<double>(label_pos_[s].size());
    });
    exchange_->sum(parts);
    double total = 0;
    std::size_t counted = 0;
    for (std::size_t s = 0; s < B; ++s)
      if (parts[2 * s + 1] > 0) total += parts[2 * s], ++counted;
    return counted ? total / counted : 0.0;
  }

  // The logits the softmax sees (negatives corrected by -log q, a sample's labels never), in
  // place in z_; each sample's largest over this shard.
  std::vector<float> max(B);
  for_samples([&](std::size_t s, ThreadScratch& t) {
    const std::size_t own = slots_of(s, t.slots);
    for (std::size_t c = 0; c < corrections.size(); ++c) {
      const std::uint32_t p = static_cast<std::uint32_t>(own + c);
      if (std::find(label_pos_[s].begin(), label_pos_[s].end(), p) == label_pos_[s].end())
        z_[t.slots[p]] += corrections[c];
    }
    float m = -std::numeric_limits<float>::infinity();
    for (const std::uint32_t slot : t.slots) m = std::max(m, z_[slot]);
    max[s] = m;
  });
  exchange_->max(max);

  // [labels, sum of exp(logit - max), sum of the labels' logits] per sample, over every shard; z_
  // holds exp(logit - max) after it.
  std::vector<double> parts(3 * B, 0.0);
  for_samples([&](std::size_t s, ThreadScratch& t) {
    slots_of(s, t.slots);
    const std::size_t n = t.slots.size();
    double label_sum = 0;
    for (const std::uint32_t p : label_pos_[s]) label_sum += z_[t.slots[p]];
    t.buf.resize(n);
    for (std::size_t i = 0; i < n; ++i) t.buf[i] = z_[t.slots[i]];
    const float sum = n ? k_.exp_shift_sum(t.buf.data(), n, max[s]) : 0.0f;
    for (std::size_t i = 0; i < n; ++i) z_[t.slots[i]] = t.buf[i];
    parts[3 * s] = static_cast<double>(label_pos_[s].size());
    parts[3 * s + 1] = sum;
    parts[3 * s + 2] = label_sum;
  });
  exchange_->sum(parts);

  std::vector<double> losses(B, 0.0);
  for_samples([&](std::size_t s, ThreadScratch& t) {
    slots_of(s, t.slots);
    const double labels = parts[3 * s];
    if (labels == 0) {  // nothing to learn from a point without labels (on any shard)
      for (const std::uint32_t slot : t.slots) z_[slot] = 0;
      return;
    }
    const float inv_sum = static_cast<float>(1.0 / parts[3 * s + 1]);
    const float target = static_cast<float>(1.0 / labels);
    for (const std::uint32_t slot : t.slots) z_[slot] = z_[slot] * inv_sum * inv_batch;
    for (const std::uint32_t p : label_pos_[s]) z_[t.slots[p]] -= target * inv_batch;
    losses[s] = max[s] + std::log(parts[3 * s + 1]) - parts[3 * s + 2] / labels;
  });
  double total = 0;
  std::size_t counted = 0;
  for (std::size_t s = 0; s < B; ++s)
    if (parts[3 * s] > 0) total += losses[s], ++counted;
  return counted ? total / counted : 0.0;
}

}  // namespace glide::engine
