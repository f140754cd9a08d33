#include "engine/logq_correction.h"

#include <algorithm>
#include <cmath>

namespace glide::engine {

void LogQCorrection::set_counts(std::span<const std::uint32_t> counts, std::uint64_t points) {
  std::fill(counts_.begin(), counts_.end(), 0u);
  std::copy_n(counts.begin(), std::min(counts.size(), counts_.size()), counts_.begin());
  samples_ = points;
  fixed_ = true;
}

void LogQCorrection::observe(std::span<const std::span<const std::uint32_t>> labels) {
  if (fixed_) return;
  for (const auto& ys : labels)
    for (std::uint32_t y : ys)
      if (y < counts_.size()) ++counts_[y];
  samples_ += labels.size();
}

void LogQCorrection::shared_corrections(std::span<const std::uint32_t> shared, std::size_t batch,
                                        std::size_t uniform, std::size_t num_batch_labels,
                                        std::vector<float>& out) const {
  out.resize(shared.size());
  const double n = static_cast<double>(counts_.size());
  const double rest = std::max(1.0, n - static_cast<double>(num_batch_labels));
  const double q_uniform = std::min(1.0, static_cast<double>(uniform) / rest);
  const double others = batch > 0 ? static_cast<double>(batch - 1) : 0.0;
  const double inv_samples = samples_ ? 1.0 / static_cast<double>(samples_) : 0.0;
  for (std::size_t k = 0; k < shared.size(); ++k) {
    const double f = std::min(1.0, counts_[shared[k]] * inv_samples);
    // Present as another sample's label, or else drawn uniformly.
    const double q_batch = f >= 1.0 ? 1.0 : -std::expm1(others * std::log1p(-f));
    const double q = q_batch + (1.0 - q_batch) * q_uniform;
    out[k] = static_cast<float>(-std::log(std::max(q, 1e-12)));
  }
}

}  // namespace glide::engine
