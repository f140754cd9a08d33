// Uniform shared negatives: the baseline sampled softmax that LSH sampling must beat.
#include <algorithm>
#include <cmath>

#include "common/rng.h"
#include "engine/logq_correction.h"
#include "engine/output_sampler.h"

namespace glide::engine {

namespace {

class RandomSampler final : public OutputSampler {
 public:
  RandomSampler(std::uint32_t n, std::uint32_t budget, std::uint64_t seed, bool logq)
      : n_(n), budget_(std::min(budget, n)), seed_(seed), stamp_(n, 0) {
    if (logq) logq_ = std::make_unique<LogQCorrection>(n);
  }

  void begin_batch(std::uint64_t batch_index,
                   std::span<const std::span<const std::uint32_t>> labels,
                   const BatchActivations&) override {
    // The batch's labels, then distinct uniform draws (rejection: cheap while the budget is a
    // small fraction of the layer).
    batch_labels(labels, stamp_, epoch_, shared_);
    const std::size_t num_labels = shared_.size();
    draw(batch_index);
    if (logq_) {
      logq_->observe(labels);
      logq_->shared_corrections(shared_, labels.size(), shared_.size() - num_labels, num_labels,
                                corrections_);
    }
  }

  void draw(std::uint64_t batch_index) {
    Rng rng(derive_seed(seed_, batch_index));
    const std::uint32_t wanted =
        std::min<std::uint32_t>(budget_, n_ - static_cast<std::uint32_t>(shared_.size()));
    if (wanted > n_ / 4) {
      // A large share of the layer: take the unmarked ids in a random order.
      std::vector<std::uint32_t> rest;
      for (std::uint32_t j = 0; j < n_; ++j)
        if (stamp_[j] != epoch_) rest.push_back(j);
      std::shuffle(rest.begin(), rest.end(), rng);
      shared_.insert(shared_.end(), rest.begin(), rest.begin() + wanted);
      return;
    }
    for (std::uint32_t drawn = 0; drawn < wanted;) {
      const std::uint32_t j = rng.below(n_);
      if (stamp_[j] == epoch_) continue;
      stamp_[j] = epoch_;
      shared_.push_back(j);
      ++drawn;
    }
  }

  void set_label_counts(std::span<const std::uint32_t> counts, std::uint64_t points) override {
    if (logq_) logq_->set_counts(counts, points);
  }

  std::span<const std::uint32_t> shared() const override { return shared_; }
  std::span<const float> shared_corrections() const override { return corrections_; }
  void select(const float*, std::vector<std::uint32_t>& out) override { out.clear(); }

 private:
  std::uint32_t n_, budget_;
  std::uint64_t seed_;
  std::vector<std::uint32_t> stamp_;
  std::uint32_t epoch_ = 0;
  std::vector<std::uint32_t> shared_;
  std::unique_ptr<LogQCorrection> logq_;
  std::vector<float> corrections_;
};

}  // namespace

std::unique_ptr<OutputSampler> make_random_sampler(std::uint32_t num_neurons, std::uint32_t budget,
                                                   std::uint64_t seed, bool logq) {
  return std::make_unique<RandomSampler>(num_neurons, budget, seed, logq);
}

}  // namespace glide::engine
