#include "engine/evaluator.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "engine/loss.h"

namespace glide::engine {

EvalMode parse_eval_mode(const std::string& s) {
  if (s == "exact") return EvalMode::kExact;
  if (s == "sampled") return EvalMode::kSampled;
  fail("eval mode must be exact or sampled, got '" + s + "'");
}

namespace {

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

void finish(const TopK& t, const Loss& loss, Prediction& p) {
  p.labels.clear();
  p.scores.clear();
  for (const auto& [s, l] : t.best) {
    p.labels.push_back(l);
    p.scores.push_back(loss.probability(s, t.max, t.sum));
  }
}

void predict_exact(const Network& net, const HiddenActivations& acts, std::size_t B,
                   std::uint32_t k, std::vector<Prediction>& out) {
  const Kernels& kern = kernels();
  const OutputMatrix* scorer = net.output.get();
  const std::size_t last = acts.layers.size() - 1;
  ScorerBatch batch;
  scorer->prepare(acts.layers[last].data(), acts.strides[last], B, net.output_bias.w.data(), batch);
  constexpr std::uint32_t kBlock = 1024;
  const std::uint32_t N = scorer->rows();
  struct Local {
    std::vector<TopK> per_sample;
    std::vector<float> scores;
  };
  tbb::enumerable_thread_specific<Local> locals([&] {
    Local l;
    l.per_sample.resize(B);
    l.scores.resize(B * kBlock);
    return l;
  });
  const std::uint32_t num_blocks = (N + kBlock - 1) / kBlock;
  std::vector<float> block_max(std::size_t{num_blocks} * B);
  std::vector<double> block_sum(std::size_t{num_blocks} * B);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_blocks, 1), [&](const auto& r) {
    Local& L = locals.local();
    for (std::uint32_t blk = r.begin(); blk < r.end(); ++blk) {
      const std::uint32_t j0 = blk * kBlock, n = std::min(kBlock, N - j0);
      scorer->score_block(batch, j0, n, L.scores.data(), kBlock);
      for (std::size_t s = 0; s < B; ++s) {
        float* row = L.scores.data() + s * kBlock;
        TopK& t = L.per_sample[s];
        for (std::uint32_t q = 0; q < n; ++q) t.offer(row[q], j0 + q, k);
        const float mx = kern.max(row, n);
        block_max[blk * B + s] = mx;
        block_sum[blk * B + s] = kern.exp_shift_sum(row, n, mx);
      }
    }
  });
  // The top k do not depend on the merge order; the normaliser is summed in block order, so
  // scores are the same bits whichever threads computed which blocks.
  std::vector<TopK> merged(B);
  for (Local& L : locals)
    for (std::size_t s = 0; s < B; ++s) merged[s].merge(L.per_sample[s], k);
  for (std::uint32_t blk = 0; blk < num_blocks; ++blk)
    for (std::size_t s = 0; s < B; ++s)
      merged[s].add_exp(block_max[blk * B + s], block_sum[blk * B + s]);
  const std::unique_ptr<Loss> loss = make_loss(net.config().loss);
  for (std::size_t s = 0; s < B; ++s) finish(merged[s], *loss, out[s]);
}

void predict_sampled(const Network& net, const HiddenActivations& acts, std::size_t B,
                     std::uint32_t k, OutputSampler& sampler, std::vector<Prediction>& out,
                     std::size_t* scored) {
  const Kernels& kern = kernels();
  const OutputMatrix* scorer = net.output.get();
  const std::size_t last = acts.layers.size() - 1;
  ScorerBatch batch;
  scorer->prepare(acts.layers[last].data(), acts.strides[last], B, net.output_bias.w.data(), batch);
  const std::unique_ptr<Loss> loss = make_loss(net.config().loss);
  std::vector<std::size_t> counts(B);
  struct Local {
    std::vector<std::uint32_t> active;
    std::vector<float> z;
  };
  tbb::enumerable_thread_specific<Local> locals;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 4), [&](const auto& r) {
    Local& L = locals.local();
    for (std::size_t s = r.begin(); s < r.end(); ++s) {
      const float* h = acts.last(s);
      sampler.select(h, L.active);
      TopK t;
      L.z.resize(L.active.size());
      scorer->score_rows(batch, s, L.active.data(), L.active.size(), L.z.data());
      for (std::size_t q = 0; q < L.active.size(); ++q) t.offer(L.z[q], L.active[q], k);
      if (!L.z.empty()) {
        const float mx = kern.max(L.z.data(), L.z.size());
        t.add_exp(mx, kern.exp_shift_sum(L.z.data(), L.z.size(), mx));
      }
      counts[s] = L.active.size();
      finish(t, *loss, out[s]);
    }
  });
  for (std::size_t c : counts) *scored += c;
}

}  // namespace

void predict_topk(const Network& net, std::span<const data::SparseView> inputs, std::uint32_t k,
                  EvalMode mode, OutputSampler* sampler, std::vector<Prediction>& out) {
  std::size_t scored = 0;
  HiddenActivations acts;
  out.resize(inputs.size());
  if (inputs.empty()) return;
  net.forward_hidden(inputs, acts, kernels());
  if (mode == EvalMode::kSampled) {
    if (!sampler) fail("sampled prediction needs the model's LSH tables");
    predict_sampled(net, acts, inputs.size(), k, *sampler, out, &scored);
  } else {
    predict_exact(net, acts, inputs.size(), k, out);
  }
}

void predict_topk_from_hidden(const Network& net, const HiddenActivations& acts, std::size_t batch,
                              std::uint32_t k, EvalMode mode, OutputSampler* sampler,
                              std::vector<Prediction>& out) {
  out.resize(batch);
  if (batch == 0) return;
  std::size_t scored = 0;
  if (mode == EvalMode::kSampled) {
    if (!sampler) fail("sampled prediction needs the model's LSH tables");
    predict_sampled(net, acts, batch, k, *sampler, out, &scored);
  } else {
    predict_exact(net, acts, batch, k, out);
  }
}

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

EvalResult evaluate(const Network& net, const data::Dataset& ds, EvalMode mode,
                    OutputSampler* sampler, std::size_t max_points, std::uint32_t batch) {
  if (ds.num_features > net.config().num_features)
    fail("test set has " + std::to_string(ds.num_features) + " features, the model " +
         std::to_string(net.config().num_features));
  EvalResult r;
  const std::size_t n = max_points ? std::min(max_points, ds.num_points()) : ds.num_points();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<data::SparseView> inputs;
  std::vector<std::size_t> idx;
  std::vector<Prediction> preds;
  HiddenActivations acts;
  std::size_t scored = 0;
  for (std::size_t b = 0; b < n; b += batch) {
    inputs.clear();
    idx.clear();
    for (std::size_t i = b; i < std::min(n, b + batch); ++i) {
      if (ds.labels(i).empty()) continue;
      inputs.push_back(ds.features(i));
      idx.push_back(i);
    }
    if (inputs.empty()) continue;
    preds.resize(inputs.size());
    net.forward_hidden(inputs, acts, kernels());
    if (mode == EvalMode::kSampled) {
      if (!sampler) fail("sampled evaluation needs the model's LSH tables");
      predict_sampled(net, acts, inputs.size(), EvalResult::kMaxK, *sampler, preds, &scored);
    } else {
      predict_exact(net, acts, inputs.size(), EvalResult::kMaxK, preds);
      scored += inputs.size() * net.num_labels();
    }
    for (std::size_t q = 0; q < idx.size(); ++q) accumulate_metrics(preds[q], ds.labels(idx[q]), r);
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

}  // namespace glide::engine
