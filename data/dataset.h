// The in-memory sparse dataset: features and labels of every point in CSR form.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace glide::data {

// One sparse vector: parallel arrays of feature ids and values.
struct SparseView {
  std::span<const std::uint32_t> ids;
  std::span<const float> values;
  std::size_t size() const { return ids.size(); }
};

// Points in CSR form. Point i has features feature_ids/values[row_offsets[i], row_offsets[i+1])
// and labels label_ids[label_offsets[i], label_offsets[i+1]). Ids are 0-based and below
// num_features / num_labels.
struct Dataset {
  std::vector<std::uint64_t> row_offsets{0};
  std::vector<std::uint32_t> feature_ids;
  std::vector<float> values;
  std::vector<std::uint64_t> label_offsets{0};
  std::vector<std::uint32_t> label_ids;
  std::uint32_t num_features = 0;
  std::uint32_t num_labels = 0;

  std::size_t num_points() const { return row_offsets.size() - 1; }
  std::size_t num_nonzeros() const { return feature_ids.size(); }
  SparseView features(std::size_t i) const {
    const auto b = row_offsets[i], e = row_offsets[i + 1];
    return {{feature_ids.data() + b, e - b}, {values.data() + b, e - b}};
  }
  std::span<const std::uint32_t> labels(std::size_t i) const {
    const auto b = label_offsets[i], e = label_offsets[i + 1];
    return {label_ids.data() + b, e - b};
  }

  // Appends one point (ids must be below the declared dimensions; not checked here).
  void add_point(std::span<const std::uint32_t> ids, std::span<const float> vals,
                 std::span<const std::uint32_t> labels);
  // Appends all points of `other` (dimensions become the larger of the two).
  void append(const Dataset& other);
  // Checks every invariant (offsets monotone and consistent, ids in range, finite values);
  // throws glide::Error naming `where` and the first bad point.
  void validate(const std::string& where = "dataset") const;
  // Removes the label ids a point repeats, keeping each label at its first place: a label listed
  // twice would weigh twice in training and in nDCG's ideal gain. Returns how many ids went;
  // `first_point`, when given and any went, gets the first point that repeated one.
  std::uint64_t drop_repeated_labels(std::size_t* first_point = nullptr);
  // A dataset holding the given points of this one, in that order.
  Dataset subset(std::span<const std::size_t> points) const;
  // How many points have each label: num_labels counts, one per label id.
  std::vector<std::uint32_t> label_counts() const;

  bool operator==(const Dataset&) const = default;
};

// Moves the first occurrence of each id in `ids` to the front, in order; returns how many distinct
// ids there are (the new length).
std::size_t keep_first_occurrences(std::span<std::uint32_t> ids);
// Whether some id occurs more than once in `ids`.
bool has_repeated_ids(std::span<const std::uint32_t> ids);

}  // namespace glide::data
