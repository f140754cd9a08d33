// An index over the output layer's rows for maximum-inner-product search: which rows j have the
// largest w_j . h + b_j for a last-hidden activation h, without scoring all of them.
//
// Each row becomes a unit vector a_j = [w_j, b_j, sqrt(M^2 - |w_j|^2 - b_j^2)] / M (M: the
// largest |[w_j, b_j]|), and a query [h, 1, 0]; then a_j . q is the row's score over M, so the
// rows with the largest inner product are the nearest in angle, and clustering by angle groups
// rows that win for the same queries. The rows are split recursively by spherical k-means into
// leaves of at most `leaf_rows` rows; a query scores every leaf's centroid and returns the rows
// of the `probes` best leaves, which the caller scores exactly (engine/index_predictor.h).
// docs/inference.md says why this method and how the defaults were measured.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/aligned.h"

namespace glide::engine {

class OutputMatrix;
class ModelFileReader;
class ModelFileWriter;

struct OutputIndexOptions {
  std::uint32_t leaf_rows = 128;  // a cluster larger than this is split
  std::uint32_t branching = 16;   // clusters per split
  std::uint32_t iterations = 8;   // k-means iterations per split
  std::uint32_t sample = 8192;    // rows a split's k-means trains on (every row is assigned)
  std::uint64_t seed = 1;
  void check() const;  // throws glide::Error naming the bad field
};

class OutputIndex {
 public:
  // Clusters the rows of `rows` with `bias` (rows.rows() values). Parallel (TBB); the result
  // depends only on the rows and the options, not on the threads.
  static std::shared_ptr<const OutputIndex> build(const OutputMatrix& rows, const float* bias,
                                                  const OutputIndexOptions& options = {});

  std::uint32_t rows() const { return rows_; }
  std::uint32_t cols() const { return cols_; }
  std::uint32_t leaves() const { return static_cast<std::uint32_t>(offsets_.size() - 1); }
  std::uint32_t leaf_size(std::uint32_t leaf) const {
    return offsets_[leaf + 1] - offsets_[leaf];
  }
  // Probes when a search does not say: enough leaves for about kDefaultFraction of the rows.
  std::uint32_t default_probes() const;
  static constexpr double kDefaultFraction = 0.01;
  std::size_t bytes() const;  // memory held (centroids, row lists)

  // Scores of every leaf's centroid for `batch` queries (rows of `stride` floats, cols() used):
  // out[s * leaves() + c].
  void score_leaves(const float* H, std::size_t stride, std::size_t batch, float* out) const;
  // The rows of the `probes` leaves with the highest scores in `leaf_scores` (one query's row of
  // score_leaves), appended to `candidates` leaf by leaf; more leaves, best first, while fewer
  // than `min_rows` rows are found (so a top-k has k rows). probes is clamped to leaves().
  void candidates(const float* leaf_scores, std::uint32_t probes, std::uint32_t min_rows,
                  std::vector<std::uint32_t>& candidates) const;

  // Model file sections "output_index.*" (docs/model-format.md).
  void save(ModelFileWriter& w) const;
  // The index in `r`, or null when the file has none. Checks it against a model of `rows` x
  // `cols` and names the section that is wrong.
  static std::shared_ptr<const OutputIndex> load(const ModelFileReader& r, std::uint32_t rows,
                                                 std::uint32_t cols);
  static bool in_file(const ModelFileReader& r);
  // load() of the model file at `path`.
  static std::shared_ptr<const OutputIndex> load(const std::string& path, std::uint32_t rows,
                                                 std::uint32_t cols);

 private:
  OutputIndex() = default;
  std::uint32_t rows_ = 0, cols_ = 0;
  std::size_t stride_ = 0;        // floats per centroid: cols + 1 (bias) padded to 16
  AlignedArray<float> centroid_;  // leaves x stride: [direction of w, of b] (unit, unscaled)
  std::vector<std::uint32_t> offsets_;  // leaf c holds row_ids_[offsets_[c] .. offsets_[c+1])
  std::vector<std::uint32_t> row_ids_;  // every row once, grouped by leaf
};

}  // namespace glide::engine
