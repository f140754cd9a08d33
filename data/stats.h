// Summary statistics of a dataset: sizes, sparsity and the label frequency distribution.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"

namespace glide::data {

struct DatasetStats {
  std::uint64_t points = 0, nonzeros = 0, label_entries = 0;
  std::uint32_t features = 0, labels = 0;
  double mean_nonzeros = 0, mean_labels = 0;
  std::uint64_t max_nonzeros = 0, max_labels = 0;
  std::uint64_t points_without_labels = 0, points_without_features = 0;
  std::uint64_t labels_never_seen = 0, features_never_seen = 0;
  // (quantile, points carrying a label at that quantile of label frequency), over all labels.
  std::vector<std::pair<double, std::uint64_t>> label_frequency_quantiles;
  // Exponent s of the Zipf law count(rank) ~ rank^-s fitted to the label counts (0 when too few
  // labels occur to fit).
  double zipf_exponent = 0;
};

DatasetStats compute_stats(const Dataset& data);
// A readable multi-line report.
std::string format_stats(const DatasetStats& stats);

// Fits s in count(rank) ~ C * rank^-s by least squares on log count vs log rank over the ranks
// whose count is at least `min_count` (small counts are mostly noise). Counts need not be sorted.
double fit_zipf_exponent(std::vector<std::uint64_t> counts, std::uint64_t min_count = 10);

}  // namespace glide::data
