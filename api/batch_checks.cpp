// The rules of a SparseBatchView (include/glide/glide.h), checked before any work: offsets,
// lengths, ids against the model's dimensions, finite values. Every message names the rule and
// the row.
#include <string>

#include "common/error.h"
#include "engine/predictor.h"
#include "glide/glide.h"

namespace glide {

namespace {

// Checks one CSR offsets array against the length of the array it indexes.
void check_offsets(std::span<const std::uint64_t> offsets, std::size_t rows, std::size_t length,
                   const char* name, const char* array, const std::string& where) {
  if (offsets.size() != rows + 1)
    fail(where, std::string(name) + " has " + std::to_string(offsets.size()) +
                    " entries, expected " + std::to_string(rows + 1) + " (rows + 1)");
  if (offsets[0] != 0)
    fail(where, std::string(name) + "[0] is " + std::to_string(offsets[0]) + ", must be 0");
  for (std::size_t i = 0; i < rows; ++i)
    if (offsets[i + 1] < offsets[i])
      fail(where, std::string("bad offsets: ") + name + " decreases at row " + std::to_string(i) +
                      " (" + std::to_string(offsets[i]) + " -> " + std::to_string(offsets[i + 1]) +
                      ")");
  if (offsets[rows] != length)
    fail(where, std::string("bad offsets: ") + name + " ends at " + std::to_string(offsets[rows]) +
                    " but " + array + " has " + std::to_string(length) + " entries");
}

data::SparseView row_of(const SparseBatchView& b, std::size_t i) {
  const auto s = b.row_offsets[i], e = b.row_offsets[i + 1];
  return {b.feature_ids.subspan(s, e - s), b.values.subspan(s, e - s)};
}

}  // namespace

void check_batch(const SparseBatchView& b, std::uint32_t num_features, std::uint32_t num_labels,
                 bool need_labels, const std::string& where) {
  if (b.row_offsets.empty()) {
    if (!b.feature_ids.empty() || !b.values.empty())
      fail(where, "row_offsets is empty but the batch has feature ids or values");
    if (need_labels) fail(where, "the batch has no rows");
    return;
  }
  const std::size_t rows = b.rows();
  if (b.feature_ids.size() != b.values.size())
    fail(where, std::to_string(b.feature_ids.size()) + " feature ids but " +
                    std::to_string(b.values.size()) + " values (the lengths must match)");
  check_offsets(b.row_offsets, rows, b.feature_ids.size(), "row_offsets", "feature_ids", where);
  const bool has_labels = !b.label_offsets.empty();
  if (need_labels && !has_labels) fail(where, "label_offsets is empty: every row needs labels");
  if (has_labels)
    check_offsets(b.label_offsets, rows, b.label_ids.size(), "label_offsets", "label_ids", where);
  for (std::size_t i = 0; i < rows; ++i) {
    if (const std::string problem = engine::input_problem(row_of(b, i), num_features);
        !problem.empty())
      fail(where, "row " + std::to_string(i) + ": " + problem);
    if (!has_labels) continue;
    for (std::uint64_t q = b.label_offsets[i]; q < b.label_offsets[i + 1]; ++q)
      if (b.label_ids[q] >= num_labels)
        fail(where, "row " + std::to_string(i) + ": label id " + std::to_string(b.label_ids[q]) +
                        " is out of range (the model has " + std::to_string(num_labels) +
                        " labels)");
  }
}

}  // namespace glide
