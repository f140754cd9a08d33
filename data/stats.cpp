#include "data/stats.h"

#include <tbb/parallel_reduce.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

namespace glide::data {

double fit_zipf_exponent(std::vector<std::uint64_t> counts, std::uint64_t min_count) {
  std::sort(counts.begin(), counts.end(), std::greater<>());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  std::size_t n = 0;
  for (std::size_t r = 0; r < counts.size() && counts[r] >= std::max<std::uint64_t>(min_count, 1);
       ++r) {
    const double x = std::log(r + 1.0), y = std::log(static_cast<double>(counts[r]));
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    ++n;
  }
  if (n < 3) return 0;
  const double denom = n * sxx - sx * sx;
  return denom > 0 ? -(n * sxy - sx * sy) / denom : 0;
}

namespace {

// How often each id below `limit` occurs in `ids`, for the ids that occur, in ascending order of
// count. Memory follows the data, not `limit`: a header may declare billions of ids (a table
// per id would then be gigabytes for a file of a few lines).
std::vector<std::uint64_t> counts_of_used_ids(const std::vector<std::uint32_t>& ids,
                                              std::uint64_t limit) {
  std::vector<std::uint64_t> counts;
  if (limit <= std::max<std::uint64_t>(ids.size(), 1u << 20)) {
    std::vector<std::uint64_t> per_id(limit);
    for (auto id : ids)
      if (id < limit) ++per_id[id];
    for (auto c : per_id)
      if (c) counts.push_back(c);
  } else {
    std::vector<std::uint32_t> sorted;
    for (auto id : ids)
      if (id < limit) sorted.push_back(id);
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size();) {
      std::size_t j = i;
      while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
      counts.push_back(j - i);
      i = j;
    }
  }
  std::sort(counts.begin(), counts.end());
  return counts;
}

}  // namespace

DatasetStats compute_stats(const Dataset& data) {
  DatasetStats s;
  s.points = data.num_points();
  s.nonzeros = data.num_nonzeros();
  s.label_entries = data.label_ids.size();
  s.features = data.num_features;
  s.labels = data.num_labels;
  for (std::size_t i = 0; i < s.points; ++i) {
    const std::uint64_t nnz = data.row_offsets[i + 1] - data.row_offsets[i];
    const std::uint64_t nl = data.label_offsets[i + 1] - data.label_offsets[i];
    s.max_nonzeros = std::max(s.max_nonzeros, nnz);
    s.max_labels = std::max(s.max_labels, nl);
    s.points_without_features += nnz == 0;
    s.points_without_labels += nl == 0;
  }
  if (s.points) {
    s.mean_nonzeros = static_cast<double>(s.nonzeros) / s.points;
    s.mean_labels = static_cast<double>(s.label_entries) / s.points;
  }
  const std::vector<std::uint64_t> label_counts = counts_of_used_ids(data.label_ids, s.labels);
  s.labels_never_seen = s.labels - label_counts.size();
  s.features_never_seen = s.features - counts_of_used_ids(data.feature_ids, s.features).size();
  s.zipf_exponent = fit_zipf_exponent(label_counts);  // unused labels do not enter the fit
  if (s.labels) {
    // The quantiles of all labels' counts: the unused ones are the zeros in front.
    for (double q : {0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0}) {
      const auto k = static_cast<std::uint64_t>(std::llround(q * (s.labels - 1)));
      s.label_frequency_quantiles.emplace_back(
          q, k < s.labels_never_seen ? 0 : label_counts[k - s.labels_never_seen]);
    }
  }
  return s;
}

std::string format_stats(const DatasetStats& s) {
  char buf[512];
  std::string out;
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    out += buf;
  };
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  line("points              %llu\n", u(s.points));
  line("features            %llu (%llu never used)\n", u(s.features), u(s.features_never_seen));
  line("labels              %llu (%llu never used)\n", u(s.labels), u(s.labels_never_seen));
  line("nonzeros            %llu (mean %.2f, max %llu per point; %llu points have none)\n",
       u(s.nonzeros), s.mean_nonzeros, u(s.max_nonzeros), u(s.points_without_features));
  line("labels per point    mean %.2f, max %llu (%llu points have none)\n", s.mean_labels,
       u(s.max_labels), u(s.points_without_labels));
  if (!s.label_frequency_quantiles.empty()) {
    out += "label frequency     ";
    for (const auto& [q, c] : s.label_frequency_quantiles) {
      std::snprintf(buf, sizeof buf, "%sq%g=%llu",
                    &q == &s.label_frequency_quantiles[0].first ? "" : " ", q * 100, u(c));
      out += buf;
    }
    out += " (points per label, by percentile)\n";
  }
  line("zipf exponent       %.3f (fitted to labels seen at least 10 times)\n", s.zipf_exponent);
  return out;
}

}  // namespace glide::data
