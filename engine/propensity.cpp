#include "engine/propensity.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace glide::engine {

InversePropensity::InversePropensity(std::span<const std::uint32_t> label_counts,
                                     std::size_t points, PropensityParams params) {
  if (points == 0) fail("propensities: the training set has no points");
  if (!(params.a > 0) || !(params.b > 0))
    fail("propensities: A and B must be positive, got A " + std::to_string(params.a) + ", B " +
         std::to_string(params.b));
  // Under 3 points ln n - 1 is negative and the model would give weights below 1: every label
  // then weighs 1.
  const double c =
      std::max(0.0, std::log(static_cast<double>(points)) - 1) * std::pow(params.b + 1, params.a);
  const auto inverse = [&](double count) { return 1 + c * std::pow(count + params.b, -params.a); };
  inverse_.resize(label_counts.size());
  for (std::size_t l = 0; l < label_counts.size(); ++l) inverse_[l] = inverse(label_counts[l]);
  unseen_ = inverse(0);
}

InversePropensity InversePropensity::of(const data::Dataset& train, PropensityParams params) {
  return InversePropensity(train.label_counts(), train.num_points(), params);
}

}  // namespace glide::engine
