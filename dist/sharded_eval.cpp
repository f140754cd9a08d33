#include "dist/sharded_eval.h"

#include <mpi.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "engine/loss.h"
#include "engine/predictor.h"
#include "engine/score_kernels.h"

namespace glide::dist {

namespace {

using Scored = std::pair<float, std::uint32_t>;  // (score, global label)

bool better(const Scored& a, const Scored& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// One input's running top-k and softmax normaliser over the rows scored so far.
struct Running {
  std::vector<Scored> top;  // a heap whose front is the worst kept
  double max = -std::numeric_limits<double>::infinity(), sum = 0;

  void offer(float score, std::uint32_t label, std::uint32_t k) {
    const Scored e{score, label};
    if (top.size() < k) {
      top.push_back(e);
      std::push_heap(top.begin(), top.end(), better);
    } else if (better(e, top.front())) {
      std::pop_heap(top.begin(), top.end(), better);
      top.back() = e;
      std::push_heap(top.begin(), top.end(), better);
    }
  }

  // Rows first_label .. first_label + n - 1 with scores row[0..n): the block's normaliser from
  // the SIMD kernel, and only the scores at least the k-th best so far offered to the top-k.
  void offer_block(const float* row, std::uint32_t n, std::uint32_t first_label, std::uint32_t k,
                   const engine::ScoreKernels& sk) {
    float block_max = 0;
    const double block_sum = sk.max_exp_sum(row, n, &block_max);
    if (block_max > max) {
      sum = sum * std::exp(max - block_max) + block_sum;
      max = block_max;
    } else {
      sum += block_sum * std::exp(block_max - max);
    }
    for (std::size_t q = 0; q < n; ++q) {
      if (top.size() == k) {
        q = sk.find_at_least(row, q, n, top.front().first);
        if (q == n) break;
      }
      offer(row[q], first_label + static_cast<std::uint32_t>(q), k);
    }
  }
};

}  // namespace

void sharded_predict(const engine::Network& shard, engine::LabelRange range,
                     std::span<const data::SparseView> inputs, std::uint32_t k,
                     std::vector<engine::Prediction>& out) {
  const std::size_t B = inputs.size();
  out.assign(B, {});
  if (k == 0) fail("sharded_predict: k must be at least 1");
  const engine::Kernels& kernels = engine::kernels();
  engine::HiddenActivations acts;
  if (B) shard.forward_hidden(inputs, acts, kernels);
  std::vector<Running> running(B);
  if (B) {
    const std::size_t last = acts.layers.size() - 1;
    engine::ScorerBatch sb;
    shard.output->prepare(acts.layers[last].data(), acts.strides[last], B,
                          shard.output_bias.w.data(), sb);
    // Each input's wide scores, by local label (none without a wide layer).
    const std::vector<engine::WideList> wide = engine::wide_lists(shard, acts, B);
    constexpr std::uint32_t kBlock = 1024;
    const std::size_t ld = kBlock;
    std::vector<float> scores(B * ld);
    const std::uint32_t N = shard.output->rows();
    const engine::ScoreKernels& sk = engine::score_kernels();
    for (std::uint32_t j0 = 0; j0 < N; j0 += kBlock) {
      const std::uint32_t n = std::min(kBlock, N - j0);
      shard.output->score_block(sb, j0, n, scores.data(), ld);
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 8), [&](const auto& r) {
        for (std::size_t s = r.begin(); s < r.end(); ++s) {
          float* row = scores.data() + s * ld;
          if (!wide.empty()) engine::add_wide(wide[s], j0, n, row);
          running[s].offer_block(row, n, range.begin + j0, k, sk);
        }
      });
    }
  }
  // Per input: k (score, label) pairs (label ~0u where the shard has fewer), max, sum.
  const std::size_t per = 2 * std::size_t{k} + 2;
  std::vector<double> mine(B * per);
  for (std::size_t s = 0; s < B; ++s) {
    double* p = mine.data() + s * per;
    std::vector<Scored>& top = running[s].top;
    std::sort(top.begin(), top.end(), better);
    for (std::uint32_t q = 0; q < k; ++q) {
      p[2 * q] = q < top.size() ? top[q].first : 0.0;
      p[2 * q + 1] = q < top.size() ? top[q].second : static_cast<double>(~0u);
    }
    p[2 * k] = running[s].max;
    p[2 * k + 1] = running[s].sum;
  }
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  std::vector<double> all(mine.size() * static_cast<std::size_t>(ranks));
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                static_cast<int>(mine.size()), MPI_DOUBLE, MPI_COMM_WORLD);
  const std::unique_ptr<engine::Loss> loss = engine::make_loss(shard.config().loss);
  std::vector<Scored> merged;
  for (std::size_t s = 0; s < B; ++s) {
    double max = -std::numeric_limits<double>::infinity(), sum = 0;
    merged.clear();
    for (int r = 0; r < ranks; ++r) {
      const double* p = all.data() + static_cast<std::size_t>(r) * mine.size() + s * per;
      for (std::uint32_t q = 0; q < k; ++q)
        if (p[2 * q + 1] != static_cast<double>(~0u))
          merged.emplace_back(static_cast<float>(p[2 * q]),
                              static_cast<std::uint32_t>(p[2 * q + 1]));
      max = std::max(max, p[2 * k]);
    }
    for (int r = 0; r < ranks; ++r) {
      const double* p = all.data() + static_cast<std::size_t>(r) * mine.size() + s * per;
      if (p[2 * k + 1] > 0) sum += p[2 * k + 1] * std::exp(p[2 * k] - max);
    }
    std::sort(merged.begin(), merged.end(), better);
    merged.resize(std::min<std::size_t>(merged.size(), k));
    engine::Prediction& pred = out[s];
    for (const auto& [score, label] : merged) {
      pred.labels.push_back(label);
      pred.scores.push_back(loss->probability(score, static_cast<float>(max), sum));
    }
  }
}

engine::EvalResult sharded_evaluate(const engine::Network& shard, engine::LabelRange range,
                                    const data::Dataset& test, std::size_t max_points,
                                    const engine::InversePropensity* propensity,
                                    std::uint32_t batch) {
  if (batch == 0) fail("evaluation batch must be at least 1");
  if (test.num_features > shard.config().num_features)
    fail("test set has " + std::to_string(test.num_features) + " features, the model " +
         std::to_string(shard.config().num_features));
  engine::EvalResult r;
  const std::size_t n = max_points ? std::min(max_points, test.num_points()) : test.num_points();
  std::vector<data::SparseView> inputs;
  std::vector<std::size_t> idx;
  std::vector<engine::Prediction> preds;
  double psp_gained[engine::EvalResult::kMaxK] = {}, psp_best[engine::EvalResult::kMaxK] = {};
  std::vector<double> weights;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t b = 0; b < n; b += batch) {
    inputs.clear();
    idx.clear();
    for (std::size_t i = b; i < std::min(n, b + batch); ++i) {
      if (test.labels(i).empty()) continue;
      inputs.push_back(test.features(i));
      idx.push_back(i);
    }
    if (inputs.empty()) continue;
    sharded_predict(shard, range, inputs, engine::EvalResult::kMaxK, preds);
    for (std::size_t q = 0; q < idx.size(); ++q) {
      engine::accumulate_metrics(preds[q], test.labels(idx[q]), r);
      if (propensity)
        engine::accumulate_psp(preds[q], test.labels(idx[q]), *propensity, psp_gained, psp_best,
                               weights);
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.points)
    for (int k = 0; k < engine::EvalResult::kMaxK; ++k) {
      r.precision[k] /= r.points;
      r.ndcg[k] /= r.points;
    }
  r.has_psp = propensity != nullptr;
  if (r.has_psp)
    for (int k = 0; k < engine::EvalResult::kMaxK; ++k)
      r.psp[k] = psp_best[k] > 0 ? psp_gained[k] / psp_best[k] : 0;
  return r;
}

}  // namespace glide::dist
