// Label propensities for propensity-scored precision (PSP@k; Jain, Prabhu and Varma, KDD 2016),
// the extreme-classification metric of how well a model predicts rare labels.
//
// P@k counts a correct label as 1 whatever it is, so a model that predicts only the few frequent
// labels can score well. PSP@k weighs a correct label l by 1 / p_l, where p_l, its propensity,
// is the chance that a relevant label l is observed at all: rare labels go missing from the
// annotations more often, and weigh more. The empirical model fits p_l to the label's count N_l
// in n training points:
//   1 / p_l = 1 + C (N_l + B)^-A,   C = (ln n - 1) (B + 1)^A,
// with A = 0.55 and B = 1.5 by default (the XC repository's values for most data sets; 0.6 and
// 2.6 for Amazon ones, 0.5 and 0.4 for Wikipedia ones). The evaluator reports PSP@k normalised
// by the best PSP@k any ranking could reach on the same points, so a perfect ranking of each
// point's labels by 1 / p_l scores 1.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "data/dataset.h"

namespace glide::engine {

struct PropensityParams {
  double a = 0.55;
  double b = 1.5;
};

class InversePropensity {
 public:
  // From each label's count among `points` training points (label_counts[l] = N_l). Errors name
  // what is out of range: no points, or A or B not positive.
  InversePropensity(std::span<const std::uint32_t> label_counts, std::size_t points,
                    PropensityParams params = {});
  // Counts the labels of `train`.
  static InversePropensity of(const data::Dataset& train, PropensityParams params = {});

  // 1 / p_l; a label beyond the counts weighs as one never seen in training (N_l = 0).
  double operator()(std::uint32_t label) const {
    return label < inverse_.size() ? inverse_[label] : unseen_;
  }
  std::size_t labels() const { return inverse_.size(); }

 private:
  std::vector<double> inverse_;
  double unseen_ = 0;
};

}  // namespace glide::engine
