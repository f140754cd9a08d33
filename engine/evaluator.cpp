#include "engine/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/error.h"

namespace glide::engine {

void accumulate_metrics(const Prediction& p, std::span<const std::uint32_t> labels, EvalResult& r) {
  double hits = 0, dcg = 0, idcg = 0;
  for (int k = 0; k < EvalResult::kMaxK; ++k) {
    if (static_cast<std::size_t>(k) < p.labels.size() &&
        std::find(labels.begin(), labels.end(), p.labels[k]) != labels.end()) {
      hits += 1;
      dcg += 1.0 / std::log2(k + 2.0);
    }
    if (static_cast<std::size_t>(k) < labels.size()) idcg += 1.0 / std::log2(k + 2.0);
    r.precision[k] += hits / (k + 1);
    r.ndcg[k] += dcg / idcg;
  }
  ++r.points;
}

EvalResult evaluate(const Predictor& predictor, const LabelledRows& rows, std::size_t max_points,
                    std::uint32_t batch) {
  if (batch == 0) fail("evaluation batch must be at least 1");
  EvalResult r;
  const std::size_t n = max_points ? std::min(max_points, rows.size()) : rows.size();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<data::SparseView> inputs;
  std::vector<std::size_t> idx;
  std::vector<Prediction> preds;
  std::size_t scored = 0;
  for (std::size_t b = 0; b < n; b += batch) {
    inputs.clear();
    idx.clear();
    for (std::size_t i = b; i < std::min(n, b + batch); ++i) {
      if (rows.labels(i).empty()) continue;
      inputs.push_back(rows.features(i));
      idx.push_back(i);
    }
    if (inputs.empty()) continue;
    predictor.predict(inputs, EvalResult::kMaxK, preds);
    for (std::size_t q = 0; q < idx.size(); ++q) {
      accumulate_metrics(preds[q], rows.labels(idx[q]), r);
      scored += preds[q].scored;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.points) {
    for (int k = 0; k < EvalResult::kMaxK; ++k) {
      r.precision[k] /= r.points;
      r.ndcg[k] /= r.points;
    }
    r.mean_scored = static_cast<double>(scored) / r.points;
  }
  return r;
}

EvalResult evaluate(const Predictor& predictor, const data::Dataset& ds, std::size_t max_points,
                    std::uint32_t batch) {
  const std::uint32_t features = predictor.network().config().num_features;
  if (ds.num_features > features)
    fail("test set has " + std::to_string(ds.num_features) + " features, the model " +
         std::to_string(features));
  return evaluate(predictor, LabelledRows::of(ds), max_points, batch);
}

EvalResult evaluate(const Network& net, const data::Dataset& ds, EvalMode mode,
                    OutputSampler* sampler, std::size_t max_points, std::uint32_t batch) {
  return evaluate(*borrow_predictor(net, mode, sampler), ds, max_points, batch);
}

}  // namespace glide::engine
