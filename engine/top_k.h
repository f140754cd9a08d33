// The running top-k of one input's scores and the softmax normaliser over every score seen, as
// the predictors keep them (engine/predictor.cpp, engine/index_predictor.cpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/loss.h"
#include "engine/predictor.h"
#include "engine/score_kernels.h"

namespace glide::engine {

// The k best (score, label) pairs seen so far, best first, plus a running log-sum-exp.
struct TopK {
  std::vector<std::pair<float, std::uint32_t>> best;
  float max = -INFINITY;
  double sum = 0;  // sum of exp(score - max)

  // Higher score first; equal scores by label id, so the result never depends on the order in
  // which (parallel) blocks offer their labels.
  static bool before(const std::pair<float, std::uint32_t>& a,
                     const std::pair<float, std::uint32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }
  void offer(float score, std::uint32_t label, std::size_t k) {
    const std::pair<float, std::uint32_t> e{score, label};
    if (best.size() == k && !before(e, best.back())) return;
    best.insert(std::upper_bound(best.begin(), best.end(), e, before), e);
    if (best.size() > k) best.pop_back();
  }
  // The score an entry needs (or more) to be kept: the k-th best once there are k, else -inf.
  // A block whose maximum is below it cannot change the top k.
  float bound(std::size_t k) const {
    return best.empty() || best.size() < k ? -INFINITY : best.back().first;
  }
  // offer() for scores[q] as label first_label + q, q < n: a vector search for the scores at or
  // above the bound, which only those few (after the first blocks, almost none) leave.
  void offer_run(const float* scores, std::size_t n, std::uint32_t first_label, std::size_t k,
                 const ScoreKernels& kern = score_kernels()) {
    for (std::size_t q = kern.find_at_least(scores, 0, n, bound(k)); q < n;
         q = kern.find_at_least(scores, q + 1, n, bound(k)))
      offer(scores[q], first_label + static_cast<std::uint32_t>(q), k);
  }
  // offer() for scores[q] as label labels[q], q < n (a candidate list), with the same search.
  void offer_labels(const float* scores, const std::uint32_t* labels, std::size_t n, std::size_t k,
                    const ScoreKernels& kern = score_kernels()) {
    for (std::size_t q = kern.find_at_least(scores, 0, n, bound(k)); q < n;
         q = kern.find_at_least(scores, q + 1, n, bound(k)))
      offer(scores[q], labels[q], k);
  }
  // offer_run() for a block whose maximum is known: none of it can enter when that is below the
  // bound (an equal score can, when its label id is lower).
  void offer_block(const float* scores, std::size_t n, std::uint32_t first_label, std::size_t k,
                   float block_max, const ScoreKernels& kern = score_kernels()) {
    if (block_max >= bound(k)) offer_run(scores, n, first_label, k, kern);
  }
  void add_exp(float block_max, double block_sum) {  // block_sum = sum exp(x - block_max)
    if (block_max > max) {
      sum = sum * std::exp(static_cast<double>(max - block_max)) + block_sum;
      max = block_max;
    } else {
      sum += block_sum * std::exp(static_cast<double>(block_max - max));
    }
  }
  void merge(const TopK& o, std::size_t k) {
    for (const auto& [s, l] : o.best) offer(s, l, k);
    if (o.sum > 0) add_exp(o.max, o.sum);
  }
};

inline void finish_prediction(const TopK& t, const Loss& loss, std::size_t scored, Prediction& p) {
  p.labels.clear();
  p.scores.clear();
  for (const auto& [s, l] : t.best) {
    p.labels.push_back(l);
    p.scores.push_back(loss.probability(s, t.max, t.sum));
  }
  p.scored = static_cast<std::uint32_t>(scored);
  p.exit_layer = -1;
}

}  // namespace glide::engine
