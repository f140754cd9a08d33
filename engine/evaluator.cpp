#include "engine/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

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
  EvalOptions o;
  o.max_points = max_points;
  o.batch = batch;
  return evaluate(predictor, rows, o);
}

namespace {
// Adds the share of reference[0..k) found in top[0..k), for k = 1..5.
void accumulate_recall(const Prediction& p, const std::vector<std::uint32_t>& reference,
                       EvalResult& r) {
  for (int k = 1; k <= EvalResult::kMaxK; ++k) {
    const std::size_t want = std::min<std::size_t>(k, reference.size());
    if (want == 0) continue;
    std::size_t found = 0;
    for (std::size_t i = 0; i < want; ++i)
      for (std::size_t j = 0; j < std::min<std::size_t>(k, p.labels.size()); ++j)
        found += p.labels[j] == reference[i];
    r.recall[k - 1] += static_cast<double>(found) / want;
  }
}
}  // namespace

void accumulate_psp(const Prediction& p, std::span<const std::uint32_t> labels,
                    const InversePropensity& inverse, double* gained, double* best,
                    std::vector<double>& weights) {
  weights.clear();
  for (const std::uint32_t l : labels) weights.push_back(inverse(l));
  std::sort(weights.begin(), weights.end(), std::greater<>());
  double got = 0, most = 0;
  for (std::size_t k = 0; k < EvalResult::kMaxK; ++k) {
    if (k < p.labels.size() && std::find(labels.begin(), labels.end(), p.labels[k]) != labels.end())
      got += inverse(p.labels[k]);
    if (k < weights.size()) most += weights[k];
    gained[k] += got;
    best[k] += most;
  }
}

EvalResult evaluate(const Predictor& predictor, const LabelledRows& rows,
                    const EvalOptions& options) {
  const std::uint32_t batch = options.batch;
  if (batch == 0) fail("evaluation batch must be at least 1");
  EvalResult r;
  const std::size_t n =
      options.max_points ? std::min(options.max_points, rows.size()) : rows.size();
  if (options.top_out) options.top_out->clear();
  double seconds = 0;
  std::vector<data::SparseView> inputs;
  std::vector<std::size_t> idx;
  std::vector<Prediction> preds;
  std::size_t scored = 0;
  double psp_gained[EvalResult::kMaxK] = {}, psp_best[EvalResult::kMaxK] = {};
  std::vector<double> weights;
  for (std::size_t b = 0; b < n; b += batch) {
    inputs.clear();
    idx.clear();
    for (std::size_t i = b; i < std::min(n, b + batch); ++i) {
      if (rows.labels(i).empty()) continue;
      inputs.push_back(rows.features(i));
      idx.push_back(i);
    }
    if (inputs.empty()) continue;
    const auto t0 = std::chrono::steady_clock::now();
    predictor.predict(inputs, EvalResult::kMaxK, preds, options.search);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::size_t q = 0; q < idx.size(); ++q) {
      const std::size_t point = r.points;  // the how-many-th evaluated point this is
      accumulate_metrics(preds[q], rows.labels(idx[q]), r);
      scored += preds[q].scored;
      if (options.reference) {
        if (point >= options.reference->size())
          fail("evaluation: the reference has fewer points than the test set");
        accumulate_recall(preds[q], (*options.reference)[point], r);
      }
      if (options.top_out) options.top_out->push_back(preds[q].labels);
      if (options.propensity)
        accumulate_psp(preds[q], rows.labels(idx[q]), *options.propensity, psp_gained, psp_best,
                       weights);
    }
  }
  r.seconds = seconds;
  if (r.points) {
    for (int k = 0; k < EvalResult::kMaxK; ++k) {
      r.precision[k] /= r.points;
      r.ndcg[k] /= r.points;
      r.recall[k] /= r.points;
    }
    r.mean_scored = static_cast<double>(scored) / r.points;
  }
  r.has_psp = options.propensity != nullptr;
  if (r.has_psp)
    for (int k = 0; k < EvalResult::kMaxK; ++k)
      r.psp[k] = psp_best[k] > 0 ? psp_gained[k] / psp_best[k] : 0;
  return r;
}

EvalResult evaluate(const Predictor& predictor, const data::Dataset& ds, std::size_t max_points,
                    std::uint32_t batch) {
  EvalOptions o;
  o.max_points = max_points;
  o.batch = batch;
  return evaluate(predictor, ds, o);
}

EvalResult evaluate(const Predictor& predictor, const data::Dataset& ds,
                    const EvalOptions& options) {
  const std::uint32_t features = predictor.network().config().num_features;
  if (ds.num_features > features)
    fail("test set has " + std::to_string(ds.num_features) + " features, the model " +
         std::to_string(features));
  return evaluate(predictor, LabelledRows::of(ds), options);
}

EvalResult evaluate(const Network& net, const data::Dataset& ds, EvalMode mode,
                    OutputSampler* sampler, std::size_t max_points, std::uint32_t batch) {
  return evaluate(*borrow_predictor(net, mode, sampler), ds, max_points, batch);
}

}  // namespace glide::engine
