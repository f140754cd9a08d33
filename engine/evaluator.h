// P@k, nDCG@k and (given the labels' propensities) PSP@k of a Predictor's top-k on labelled
// points.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "data/dataset.h"
#include "engine/network.h"
#include "engine/output_sampler.h"
#include "engine/predictor.h"
#include "engine/propensity.h"

namespace glide::engine {

struct EvalResult {
  static constexpr int kMaxK = 5;
  double precision[kMaxK] = {};  // P@1..P@5
  double ndcg[kMaxK] = {};       // nDCG@1..nDCG@5
  std::size_t points = 0;        // points evaluated (points without labels are skipped)
  double seconds = 0;
  double mean_scored = 0;  // output neurons scored per point
  // With EvalOptions::reference: the share of the reference's top-k found in this top-k, k = 1..5.
  double recall[kMaxK] = {};
  // With EvalOptions::propensity: PSP@1..PSP@5, normalised (engine/propensity.h): the top-k's
  // correct labels weighted by their inverse propensities, summed over the points, over the same
  // sum for each point's own labels ranked by weight.
  bool has_psp = false;
  double psp[kMaxK] = {};
  double seconds_per_point() const { return points ? seconds / points : 0; }
};

// The top-5 labels of each evaluated point, in order (what EvalOptions::reference compares with).
using TopLabels = std::vector<std::vector<std::uint32_t>>;

struct EvalOptions {
  std::size_t max_points = 0;  // 0: all
  std::uint32_t batch = 256;   // points per predict call
  SearchParams search;
  // Another predictor's top labels of the same points (e.g. exact ones from `top_out`): recall.
  const TopLabels* reference = nullptr;
  TopLabels* top_out = nullptr;  // when set: receives this predictor's top labels
  // The labels' inverse propensities (from the training set's label counts): PSP@k.
  const InversePropensity* propensity = nullptr;
};

// Labelled points in CSR form, viewed (a data::Dataset's arrays, or a library user's batch).
// Point i has features feature_ids/values[row_offsets[i], row_offsets[i+1]) and labels
// label_ids[label_offsets[i], label_offsets[i+1]).
struct LabelledRows {
  std::span<const std::uint64_t> row_offsets;
  std::span<const std::uint32_t> feature_ids;
  std::span<const float> values;
  std::span<const std::uint64_t> label_offsets;
  std::span<const std::uint32_t> label_ids;

  static LabelledRows of(const data::Dataset& d) {
    return {d.row_offsets, d.feature_ids, d.values, d.label_offsets, d.label_ids};
  }
  std::size_t size() const { return row_offsets.empty() ? 0 : row_offsets.size() - 1; }
  data::SparseView features(std::size_t i) const {
    const auto b = row_offsets[i], e = row_offsets[i + 1];
    return {feature_ids.subspan(b, e - b), values.subspan(b, e - b)};
  }
  std::span<const std::uint32_t> labels(std::size_t i) const {
    const auto b = label_offsets[i], e = label_offsets[i + 1];
    return label_ids.subspan(b, e - b);
  }
};

// Evaluates the first `max_points` points of `rows` (0: all) through `predictor`, `batch` points
// per predict call.
EvalResult evaluate(const Predictor& predictor, const LabelledRows& rows,
                    std::size_t max_points = 0, std::uint32_t batch = 256);
EvalResult evaluate(const Predictor& predictor, const LabelledRows& rows,
                    const EvalOptions& options);
// The same over a dataset (its declared feature count must not exceed the model's).
EvalResult evaluate(const Predictor& predictor, const data::Dataset& ds,
                    const EvalOptions& options);
EvalResult evaluate(const Predictor& predictor, const data::Dataset& ds, std::size_t max_points = 0,
                    std::uint32_t batch = 256);
// The network as it stands, through borrow_predictor(net, mode, sampler): evaluation while
// training, with the trainer's own LSH tables in sampled mode.
EvalResult evaluate(const Network& net, const data::Dataset& ds, EvalMode mode,
                    OutputSampler* sampler, std::size_t max_points = 0, std::uint32_t batch = 256);

// Adds one point's P@k and nDCG@k (k = 1..5) to `r`.
void accumulate_metrics(const Prediction& p, std::span<const std::uint32_t> labels, EvalResult& r);
// Adds one point's propensity-weighted hits in its top-k (gained) and the most any top-k could
// weigh (best: its labels' largest weights), for k = 1..5: PSP@k is the sum of gained[k - 1]
// over the points over that of best[k - 1]. `weights` is scratch.
void accumulate_psp(const Prediction& p, std::span<const std::uint32_t> labels,
                    const InversePropensity& inverse, double* gained, double* best,
                    std::vector<double>& weights);

}  // namespace glide::engine
