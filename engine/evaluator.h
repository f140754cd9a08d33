// Top-k prediction and P@k / nDCG@k, scoring every label (exact) or only the LSH active set.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "data/dataset.h"
#include "engine/network.h"
#include "engine/output_sampler.h"

namespace glide::engine {

enum class EvalMode { kExact, kSampled };
EvalMode parse_eval_mode(const std::string& s);

struct Prediction {
  std::vector<std::uint32_t> labels;  // best first
  std::vector<float> scores;          // softmax probabilities (sigmoid for one-vs-all models)
};

// Top-k labels of each input. Exact mode reads every output row once per batch of inputs;
// sampled mode scores only the neurons `sampler` selects (required then). Runs on the current
// TBB arena.
void predict_topk(const Network& net, std::span<const data::SparseView> inputs, std::uint32_t k,
                  EvalMode mode, OutputSampler* sampler, std::vector<Prediction>& out);

// The output layer only: top-k of rows [0, batch) of `acts`, whose last hidden layer is already
// computed (what predict_topk does after forward_hidden). For early-exit serving (cache/).
void predict_topk_from_hidden(const Network& net, const HiddenActivations& acts, std::size_t batch,
                              std::uint32_t k, EvalMode mode, OutputSampler* sampler,
                              std::vector<Prediction>& out);

struct EvalResult {
  static constexpr int kMaxK = 5;
  double precision[kMaxK] = {};  // P@1..P@5
  double ndcg[kMaxK] = {};       // nDCG@1..nDCG@5
  std::size_t points = 0;        // points evaluated (points without labels are skipped)
  double seconds = 0;
  double mean_scored = 0;  // output neurons scored per point
  double seconds_per_point() const { return points ? seconds / points : 0; }
};

// Evaluates the first `max_points` points of `ds` (0: all) with the given mode.
EvalResult evaluate(const Network& net, const data::Dataset& ds, EvalMode mode,
                    OutputSampler* sampler, std::size_t max_points = 0, std::uint32_t batch = 256);

// Adds one point's P@k and nDCG@k (k = 1..5) to `r`.
void accumulate_metrics(const Prediction& p, std::span<const std::uint32_t> labels, EvalResult& r);

}  // namespace glide::engine
