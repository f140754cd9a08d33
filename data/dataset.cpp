#include "data/dataset.h"

#include <algorithm>
#include <cmath>

#include <tbb/parallel_for.h>

#include "common/error.h"

namespace glide::data {

void Dataset::add_point(std::span<const std::uint32_t> ids, std::span<const float> vals,
                        std::span<const std::uint32_t> labels) {
  feature_ids.insert(feature_ids.end(), ids.begin(), ids.end());
  values.insert(values.end(), vals.begin(), vals.end());
  row_offsets.push_back(feature_ids.size());
  label_ids.insert(label_ids.end(), labels.begin(), labels.end());
  label_offsets.push_back(label_ids.size());
}

void Dataset::append(const Dataset& other) {
  const std::uint64_t fbase = feature_ids.size(), lbase = label_ids.size();
  feature_ids.insert(feature_ids.end(), other.feature_ids.begin(), other.feature_ids.end());
  values.insert(values.end(), other.values.begin(), other.values.end());
  label_ids.insert(label_ids.end(), other.label_ids.begin(), other.label_ids.end());
  for (std::size_t i = 1; i < other.row_offsets.size(); ++i)
    row_offsets.push_back(fbase + other.row_offsets[i]);
  for (std::size_t i = 1; i < other.label_offsets.size(); ++i)
    label_offsets.push_back(lbase + other.label_offsets[i]);
  num_features = std::max(num_features, other.num_features);
  num_labels = std::max(num_labels, other.num_labels);
}

namespace {

// Lists this short are checked pairwise (no allocation); longer ones through a sorted copy.
constexpr std::size_t kPairwiseLimit = 32;

// A sorted copy of `ids` in a per-thread buffer (readers call this once per line), valid until
// the next call on the same thread.
std::vector<std::uint32_t>& sorted_copy(std::span<const std::uint32_t> ids) {
  thread_local std::vector<std::uint32_t> sorted;
  sorted.assign(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

}  // namespace

bool has_repeated_ids(std::span<const std::uint32_t> ids) {
  if (ids.size() <= kPairwiseLimit) {
    for (std::size_t k = 1; k < ids.size(); ++k)
      if (std::find(ids.begin(), ids.begin() + k, ids[k]) != ids.begin() + k) return true;
    return false;
  }
  const auto& sorted = sorted_copy(ids);
  return std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end();
}

std::size_t keep_first_occurrences(std::span<std::uint32_t> ids) {
  if (!has_repeated_ids(ids)) return ids.size();
  std::size_t kept = 0;
  if (ids.size() <= kPairwiseLimit) {
    for (std::size_t k = 0; k < ids.size(); ++k)
      if (std::find(ids.begin(), ids.begin() + kept, ids[k]) == ids.begin() + kept)
        ids[kept++] = ids[k];
    return kept;
  }
  auto& distinct = sorted_copy(ids);
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<bool> seen(distinct.size());
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const auto at = static_cast<std::size_t>(
        std::lower_bound(distinct.begin(), distinct.end(), ids[k]) - distinct.begin());
    if (seen[at]) continue;
    seen[at] = true;
    ids[kept++] = ids[k];
  }
  return kept;
}

std::uint64_t Dataset::drop_repeated_labels(std::size_t* first_point) {
  // Most datasets repeat nothing: find the first point that does in parallel, compact from there.
  constexpr std::size_t kBlock = 1 << 14;
  const std::size_t n = num_points();
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<std::size_t> first_in_block(blocks, n);
  tbb::parallel_for(std::size_t{0}, blocks, [&](std::size_t b) {
    for (std::size_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i)
      if (has_repeated_ids(labels(i))) {
        first_in_block[b] = i;
        return;
      }
  });
  if (blocks == 0) return 0;
  const std::size_t first = *std::min_element(first_in_block.begin(), first_in_block.end());
  if (first == n) return 0;
  if (first_point) *first_point = first;
  std::uint64_t read = label_offsets[first], write = read, removed = 0;
  for (std::size_t i = first; i < n; ++i) {
    const std::uint64_t end = label_offsets[i + 1];
    std::copy(label_ids.begin() + read, label_ids.begin() + end, label_ids.begin() + write);
    const std::size_t kept = keep_first_occurrences({label_ids.data() + write, end - read});
    removed += end - read - kept;
    read = end;
    write += kept;
    label_offsets[i + 1] = write;
  }
  label_ids.resize(write);
  return removed;
}

namespace {

// Checks points [first, last); returns the first bad one's message, or "" when all are good.
// Strings are built only for a bad point, so the common case is a tight loop.
std::string check_points(const Dataset& d, std::size_t first, std::size_t last,
                         const std::string& where) {
  for (std::size_t i = first; i < last; ++i) {
    const auto point = [&] { return where + ": point " + std::to_string(i) + ": "; };
    if (d.row_offsets[i + 1] < d.row_offsets[i] || d.label_offsets[i + 1] < d.label_offsets[i] ||
        d.row_offsets[i + 1] > d.feature_ids.size() || d.label_offsets[i + 1] > d.label_ids.size())
      return point() + "offsets decrease or run past the arrays";
    for (auto k = d.row_offsets[i]; k < d.row_offsets[i + 1]; ++k) {
      if (d.feature_ids[k] >= d.num_features)
        return point() + "feature id " + std::to_string(d.feature_ids[k]) +
               " >= number of features " + std::to_string(d.num_features);
      if (!std::isfinite(d.values[k])) return point() + "non-finite feature value";
    }
    for (auto k = d.label_offsets[i]; k < d.label_offsets[i + 1]; ++k)
      if (d.label_ids[k] >= d.num_labels)
        return point() + "label id " + std::to_string(d.label_ids[k]) + " >= number of labels " +
               std::to_string(d.num_labels);
  }
  return {};
}

}  // namespace

void Dataset::validate(const std::string& where) const {
  if (row_offsets.empty() || label_offsets.size() != row_offsets.size())
    fail(where, "row and label offset arrays disagree on the number of points");
  if (row_offsets.front() != 0 || label_offsets.front() != 0)
    fail(where, "offsets must start at 0");
  if (row_offsets.back() != feature_ids.size() || feature_ids.size() != values.size())
    fail(where, "feature arrays disagree with the row offsets");
  if (label_offsets.back() != label_ids.size())
    fail(where, "label array disagrees with the label offsets");
  // Blocks are checked in parallel; the first bad point in order is reported.
  constexpr std::size_t kBlock = 1 << 14;
  const std::size_t blocks = (num_points() + kBlock - 1) / kBlock;
  std::vector<std::string> errors(blocks);
  tbb::parallel_for(std::size_t{0}, blocks, [&](std::size_t b) {
    errors[b] = check_points(*this, b * kBlock, std::min(num_points(), (b + 1) * kBlock), where);
  });
  for (const auto& e : errors)
    if (!e.empty()) throw Error(e);
}

Dataset Dataset::subset(std::span<const std::size_t> points) const {
  Dataset out;
  out.num_features = num_features;
  out.num_labels = num_labels;
  out.row_offsets.reserve(points.size() + 1);
  out.label_offsets.reserve(points.size() + 1);
  for (std::size_t p : points) {
    const SparseView f = features(p);
    out.add_point(f.ids, f.values, labels(p));
  }
  return out;
}

std::vector<std::uint32_t> Dataset::label_counts() const {
  std::vector<std::uint32_t> counts(num_labels, 0);
  for (const std::uint32_t y : label_ids) ++counts[y];
  return counts;
}

}  // namespace glide::data
