#include "engine/index_predictor.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "common/error.h"
#include "engine/loss.h"
#include "engine/output_matrix.h"
#include "engine/top_k.h"

namespace glide::engine {

IndexPredictor::IndexPredictor(std::shared_ptr<const Network> net,
                               std::shared_ptr<const OutputIndex> index, std::uint32_t probes)
    : Predictor(std::move(net)), index_(std::move(index)), probes_(probes) {
  if (!index_) fail("index prediction needs an output index");
  const OutputMatrix& W = *network().output;
  if (index_->rows() != W.rows() || index_->cols() != W.cols())
    fail("the output index is over " + std::to_string(index_->rows()) + " x " +
         std::to_string(index_->cols()) + " rows but the output layer is " +
         std::to_string(W.rows()) + " x " + std::to_string(W.cols()));
}

std::uint32_t IndexPredictor::probes(const SearchParams& params) const {
  const std::uint32_t p = params.probes ? params.probes : probes_ ? probes_
                                                                  : index_->default_probes();
  return std::min(p, index_->leaves());
}

void IndexPredictor::predict_from_hidden(const HiddenActivations& acts, std::size_t B,
                                         std::uint32_t k, const SearchParams& params,
                                         std::vector<Prediction>& out) const {
  out.resize(B);
  if (B == 0) return;
  const Network& net = network();
  const Kernels& kern = kernels();
  const OutputMatrix& W = *net.output;
  const std::size_t last = acts.layers.size() - 1;
  const float* H = acts.layers[last].data();
  const std::size_t stride = acts.strides[last];
  ScorerBatch batch;
  W.prepare(H, stride, B, net.output_bias.w.data(), batch);
  const std::unique_ptr<Loss> loss = make_loss(net.config().loss);
  const std::uint32_t probes = this->probes(params);
  const std::uint32_t L = index_->leaves();
  struct Local {
    std::vector<float> leaf_scores;
    std::vector<std::uint32_t> rows;
    std::vector<float> z;
  };
  tbb::enumerable_thread_specific<Local> locals;
  // Blocks of samples: the leaf centroids are read once per block.
  constexpr std::size_t kBlock = 16;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, kBlock), [&](const auto& r) {
    Local& l = locals.local();
    l.leaf_scores.resize(r.size() * L);
    index_->score_leaves(H + r.begin() * stride, stride, r.size(), l.leaf_scores.data());
    for (std::size_t s = r.begin(); s < r.end(); ++s) {
      l.rows.clear();
      index_->candidates(l.leaf_scores.data() + (s - r.begin()) * L, probes, k, l.rows);
      l.z.resize(l.rows.size());
      W.score_rows(batch, s, l.rows.data(), l.rows.size(), l.z.data());
      TopK t;
      for (std::size_t q = 0; q < l.rows.size(); ++q) t.offer(l.z[q], l.rows[q], k);
      if (!l.z.empty()) {
        const float mx = kern.max(l.z.data(), l.z.size());
        t.add_exp(mx, kern.exp_shift_sum(l.z.data(), l.z.size(), mx));
      }
      finish_prediction(t, *loss, l.rows.size(), out[s]);
    }
  });
}

}  // namespace glide::engine
