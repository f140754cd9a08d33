#include "engine/index_predictor.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>

#include "common/error.h"
#include "engine/loss.h"
#include "engine/output_matrix.h"
#include "engine/score_kernels.h"
#include "engine/top_k.h"

namespace glide::engine {

IndexPredictor::IndexPredictor(std::shared_ptr<const Network> net,
                               std::shared_ptr<const OutputIndex> index, std::uint32_t probes)
    : Predictor(std::move(net)), index_(std::move(index)), probes_(probes) {
  if (!index_) fail("index prediction needs an output index");
  const OutputMatrix& W = *network().output;
  if (index_->labels() != W.rows() || index_->cols() != W.cols())
    fail("the output index is for " + std::to_string(index_->labels()) + " labels of " +
         std::to_string(index_->cols()) + " inputs but the output layer is " +
         std::to_string(W.rows()) + " x " + std::to_string(W.cols()));
}

std::uint32_t IndexPredictor::probes(const SearchParams& params) const {
  const std::uint32_t p = params.probes ? params.probes
                          : probes_     ? probes_
                                        : OutputIndex::kDefaultProbes;
  return std::min(p, index_->clusters());
}

void IndexPredictor::predict_from_hidden(const HiddenActivations& acts, std::size_t B,
                                         std::uint32_t k, const SearchParams& params,
                                         std::vector<Prediction>& out) const {
  out.resize(B);
  if (B == 0) return;
  const Network& net = network();
  const ScoreKernels& sk = score_kernels();
  const OutputMatrix& W = *net.output;
  const std::size_t last = acts.layers.size() - 1;
  const float* H = acts.layers[last].data();
  const std::size_t stride = acts.strides[last];
  ScorerBatch batch;
  W.prepare(H, stride, B, net.output_bias.w.data(), batch);
  const std::unique_ptr<Loss> loss = make_loss(net.config().loss);
  const std::uint32_t probes = this->probes(params);
  const std::uint32_t G = index_->groups();
  struct Local {
    std::vector<float> group_scores;
    std::vector<std::uint32_t> labels;
    std::vector<float> z;
  };
  const bool wide = !net.wide.empty();
  tbb::enumerable_thread_specific<Local> locals;
  // Blocks of samples: the group centroids are read once per block.
  constexpr std::size_t kBlock = 16;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, kBlock), [&](const auto& r) {
    Local& l = locals.local();
    l.group_scores.resize(r.size() * G);
    index_->score_groups(H + r.begin() * stride, stride, r.size(), l.group_scores.data());
    for (std::size_t s = r.begin(); s < r.end(); ++s) {
      l.labels.clear();
      index_->candidates(H + s * stride, l.group_scores.data() + (s - r.begin()) * G, probes, k,
                         l.labels);
      // A score per label is megabytes at 670k labels: kept per thread across calls.
      thread_local WideScores w;
      if (wide) {
        net.wide.score(acts.inputs[s], w);
        add_wide_candidates(w, kWideCandidates, l.labels);
      }
      l.z.resize(l.labels.size());
      W.score_rows(batch, s, l.labels.data(), l.labels.size(), l.z.data());
      if (wide) add_wide_scores(w, l.labels, l.z.data());
      TopK t;
      t.offer_labels(l.z.data(), l.labels.data(), l.labels.size(), k, sk);
      float mx = 0;
      const float sum = sk.max_exp_sum(l.z.data(), l.z.size(), &mx);
      t.add_exp(mx, sum);
      finish_prediction(t, *loss, l.labels.size(), out[s]);
    }
  });
}

}  // namespace glide::engine
