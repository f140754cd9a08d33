// An index that answers "which output rows can be among the top-k for this input" without
// scoring every row: the candidates of sampled inference (engine/index_predictor.h).
//
// It is built from the training data through the trained model. The last hidden activations of
// the training points are clustered by angle (spherical k-means); each cluster keeps the labels
// its points are labelled with plus the exact top labels the model predicts for a sample of them.
// The clusters are grouped by their centroids; a query scores the group centroids, then the
// clusters of its best groups, and its candidates are the labels of the `probes` best clusters
// plus the labels with the largest bias (what the model predicts for inputs it has no evidence
// for). The caller scores the candidates exactly, so the answer is exact whenever the
// exact top-k are among them. Methods over the weight rows alone (clustered rows, graphs over the
// rows) found the exact top-1 far less often for the rows scored: docs/inference.md has the
// measurements.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/aligned.h"
#include "data/dataset.h"

namespace glide::engine {

class Network;
class ModelFileReader;
class ModelFileWriter;

struct OutputIndexOptions {
  std::uint32_t clusters = 0;         // 0: one per 8 training points, up to 65536
  std::uint32_t iterations = 10;      // k-means iterations
  std::uint32_t predicted = 0;        // exact top labels added per predicted point (0: none)
  double predict_budget = 2e11;       // multiply-adds spent on exact predictions
  std::uint32_t head = 32;            // largest-bias labels, candidates of every query
  std::uint32_t max_points = 200000;  // training points used (a random subset beyond)
  std::uint64_t seed = 1;
  void check() const;  // throws glide::Error naming the bad field
};

class OutputIndex {
 public:
  // Probes when a search does not say (measured: docs/inference.md).
  static constexpr std::uint32_t kDefaultProbes = 8;

  // Builds the index of `net` (trained) from its training data. Parallel (TBB); the result
  // depends only on the inputs and options. `progress` (optional) gets a line now and then.
  static std::shared_ptr<const OutputIndex> build(
      const Network& net, const data::Dataset& train, const OutputIndexOptions& options = {},
      const std::function<void(const std::string&)>& progress = nullptr);

  std::uint32_t labels() const { return labels_; }
  std::uint32_t cols() const { return cols_; }
  std::uint32_t clusters() const { return static_cast<std::uint32_t>(offsets_.size() - 1); }
  std::uint32_t groups() const { return static_cast<std::uint32_t>(group_offsets_.size() - 1); }
  std::uint32_t cluster_size(std::uint32_t c) const { return offsets_[c + 1] - offsets_[c]; }
  const std::vector<std::uint32_t>& head() const { return head_; }
  std::size_t bytes() const;

  // Scores of every group for `batch` queries (last-hidden rows of `stride` floats, cols()
  // used): out[s * groups() + g].
  void score_groups(const float* H, std::size_t stride, std::size_t batch, float* out) const;
  // Groups whose clusters a search with `probes` scores.
  std::uint32_t groups_searched(std::uint32_t probes) const;
  static constexpr std::uint32_t kMinGroups = 16;
  // The candidates of query `h` (cols() floats) from its row of score_groups: the head labels,
  // then the labels of the `probes` best clusters of the searched groups (more of them, best
  // first, while fewer than `min_labels` are found; then the lowest label ids), each label once.
  void candidates(const float* h, const float* group_scores, std::uint32_t probes,
                  std::uint32_t min_labels, std::vector<std::uint32_t>& out) const;

  // Model file sections "output_index.*" (docs/model-format.md).
  void save(ModelFileWriter& w) const;
  // The index in `r` (null when the file has none), checked against a model with `labels`
  // output rows of `cols` inputs; a section that is wrong is named.
  static std::shared_ptr<const OutputIndex> load(const ModelFileReader& r, std::uint32_t labels,
                                                 std::uint32_t cols);
  static std::shared_ptr<const OutputIndex> load(const std::string& path, std::uint32_t labels,
                                                 std::uint32_t cols);
  static bool in_file(const ModelFileReader& r);

 private:
  OutputIndex() = default;
  std::uint32_t labels_ = 0, cols_ = 0;
  std::size_t stride_ = 0;              // floats per centroid
  AlignedArray<float> centroid_;        // clusters x stride, unit vectors
  std::vector<std::uint32_t> offsets_;  // cluster c: labels_of_[offsets_[c] .. offsets_[c+1])
  std::vector<std::uint32_t> labels_of_;
  std::vector<std::uint32_t> head_;
  AlignedArray<float> group_centroid_;        // groups x stride, unit vectors
  std::vector<std::uint32_t> group_offsets_;  // group g: clusters [group_offsets_[g], [g+1])
};

}  // namespace glide::engine
