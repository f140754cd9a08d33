#include "data/dataset.h"

#include <algorithm>
#include <cmath>

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

void Dataset::validate(const std::string& where) const {
  if (row_offsets.empty() || label_offsets.size() != row_offsets.size())
    fail(where, "row and label offset arrays disagree on the number of points");
  if (row_offsets.front() != 0 || label_offsets.front() != 0)
    fail(where, "offsets must start at 0");
  if (row_offsets.back() != feature_ids.size() || feature_ids.size() != values.size())
    fail(where, "feature arrays disagree with the row offsets");
  if (label_offsets.back() != label_ids.size())
    fail(where, "label array disagrees with the label offsets");
  for (std::size_t i = 0; i < num_points(); ++i) {
    const std::string point = where + ": point " + std::to_string(i);
    if (row_offsets[i + 1] < row_offsets[i] || label_offsets[i + 1] < label_offsets[i])
      fail(point, "offsets decrease");
    for (auto k = row_offsets[i]; k < row_offsets[i + 1]; ++k) {
      if (feature_ids[k] >= num_features)
        fail(point, "feature id " + std::to_string(feature_ids[k]) + " >= number of features " +
                        std::to_string(num_features));
      if (!std::isfinite(values[k])) fail(point, "non-finite feature value");
    }
    for (auto k = label_offsets[i]; k < label_offsets[i + 1]; ++k)
      if (label_ids[k] >= num_labels)
        fail(point, "label id " + std::to_string(label_ids[k]) + " >= number of labels " +
                        std::to_string(num_labels));
  }
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

}  // namespace glide::data
