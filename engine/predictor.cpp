#include "engine/predictor.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "engine/checkpoint.h"
#include "engine/index_predictor.h"
#include "engine/loss.h"
#include "engine/output_matrix.h"
#include "engine/output_sampler.h"
#include "engine/output_weights.h"
#include "engine/top_k.h"

namespace glide::engine {

EvalMode parse_eval_mode(const std::string& s) {
  if (s == "exact") return EvalMode::kExact;
  if (s == "sampled") return EvalMode::kSampled;
  fail("eval mode must be exact or sampled, got '" + s + "'");
}

const char* eval_mode_name(EvalMode m) {
  return m == EvalMode::kSampled ? "sampled" : "exact";
}

std::vector<int> exit_layers(std::span<const Prediction> predictions) {
  std::vector<int> out;
  out.reserve(predictions.size());
  for (const Prediction& p : predictions) out.push_back(p.exit_layer);
  return out;
}

namespace {

// A shared_ptr that does not own `p` (the caller keeps it alive).
template <class T>
std::shared_ptr<T> borrowed(T* p) {
  return std::shared_ptr<T>(std::shared_ptr<T>{}, p);
}

}  // namespace

// --- Predictor -------------------------------------------------------------------------------

Predictor::Predictor(std::shared_ptr<const Network> net) : net_(std::move(net)) {
  if (!net_) fail("a predictor needs a network");
}

std::string input_problem(const data::SparseView& x, std::uint32_t num_features) {
  if (x.ids.size() != x.values.size())
    return std::to_string(x.ids.size()) + " feature ids but " + std::to_string(x.values.size()) +
           " values (the lengths must match)";
  for (std::size_t q = 0; q < x.ids.size(); ++q) {
    if (x.ids[q] >= num_features)
      return "feature id " + std::to_string(x.ids[q]) + " is out of range (the model has " +
             std::to_string(num_features) + " features)";
    if (!std::isfinite(x.values[q]))
      return "the value of feature " + std::to_string(x.ids[q]) + " is not finite";
  }
  return {};
}

void Predictor::check_input(const data::SparseView& x, std::size_t index) const {
  if (std::string problem = input_problem(x, net_->config().num_features); !problem.empty())
    fail("input " + std::to_string(index), problem);
}

void Predictor::predict(std::span<const data::SparseView> inputs, std::uint32_t k,
                        std::vector<Prediction>& out, const SearchParams& params) const {
  if (k == 0) fail("k must be at least 1");
  for (std::size_t i = 0; i < inputs.size(); ++i) check_input(inputs[i], i);
  predict_checked(inputs, std::min(k, net_->num_labels()), params, out);
}

void Predictor::predict_checked(std::span<const data::SparseView> inputs, std::uint32_t k,
                                const SearchParams& params, std::vector<Prediction>& out) const {
  out.resize(inputs.size());
  if (inputs.empty()) return;
  HiddenActivations acts;
  net_->forward_hidden(inputs, acts, kernels());
  predict_from_hidden(acts, inputs.size(), k, params, out);
}

namespace {
// The output layer's view of the last hidden layer's B rows (and the output bias).
void prepare_last_hidden(const Network& net, const HiddenActivations& acts, std::size_t B,
                         ScorerBatch& batch) {
  const std::size_t last = acts.layers.size() - 1;
  net.output->prepare(acts.layers[last].data(), acts.strides[last], B, net.output_bias.w.data(),
                      batch);
}
}  // namespace

std::vector<WideList> wide_lists(const Network& net, const HiddenActivations& acts, std::size_t B) {
  std::vector<WideList> out;
  if (net.wide.empty()) return out;
  out.resize(B);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 4), [&](const auto& r) {
    // A score per label is megabytes at 670k labels: kept per thread across calls, not
    // allocated per request.
    thread_local WideScores w;
    for (std::size_t s = r.begin(); s < r.end(); ++s) {
      net.wide.score(acts.inputs[s], w);
      WideList& list = out[s];
      list.reserve(w.labels().size());
      w.for_each_in_order([&](std::uint32_t l) { list.emplace_back(l, w[l]); });
    }
  });
  return out;
}

void add_wide(const WideList& list, std::uint32_t j0, std::uint32_t n, float* scores) {
  auto it =
      std::lower_bound(list.begin(), list.end(), std::pair<std::uint32_t, float>(j0, -INFINITY));
  for (; it != list.end() && it->first < j0 + n; ++it) scores[it->first - j0] += it->second;
}

void add_wide_candidates(const WideScores& wide, std::uint32_t count,
                         std::vector<std::uint32_t>& labels) {
  const std::span<const std::uint32_t> reached = wide.labels();
  if (reached.empty() || count == 0) return;
  // Most labels are turned away by one comparison with the count-th best so far.
  thread_local TopK best;
  best.best.clear();
  for (const std::uint32_t l : reached) best.offer(wide[l], l, count);
  thread_local std::vector<std::uint32_t> have;
  have.assign(labels.begin(), labels.end());
  std::sort(have.begin(), have.end());
  for (const auto& [score, l] : best.best)
    if (!std::binary_search(have.begin(), have.end(), l)) labels.push_back(l);
}

void add_wide_scores(const WideScores& wide, std::span<const std::uint32_t> labels, float* z) {
  for (std::size_t q = 0; q < labels.size(); ++q)
    if (wide.reached(labels[q])) z[q] += wide[labels[q]];
}

// --- ExactPredictor --------------------------------------------------------------------------

void ExactPredictor::predict_from_hidden(const HiddenActivations& acts, std::size_t B,
                                         std::uint32_t k, const SearchParams&,
                                         std::vector<Prediction>& out) const {
  out.resize(B);
  if (B == 0) return;
  const Network& net = network();
  const ScoreKernels& sk = score_kernels();
  const OutputMatrix* scorer = net.output.get();
  ScorerBatch batch;
  prepare_last_hidden(net, acts, B, batch);
  constexpr std::uint32_t kBlock = 1024;
  // Sample rows of the score buffer lie kLd floats apart: 4 KB apart, the samples' rows of one
  // block would all fall in the same L1 sets and evict each other as the scorer writes them.
  constexpr std::size_t kLd = kBlock + 16;
  const std::uint32_t N = scorer->rows();
  const std::uint32_t num_blocks = (N + kBlock - 1) / kBlock;
  // The wide layer's scores are added block by block, one of two ways. With few blocks, each
  // sample keeps a cursor per input entry into its features' label lists (WideLayer::seek,
  // add_block; seeked at the start of each range of blocks a thread takes): a step per input
  // entry per block. With many, each sample's scores are listed once, in label order
  // (wide_lists), and each block adds its part: a step per entry reached, plus a word per 64
  // labels. kAuto walks where its steps are at most the entries the lists would visit
  // (measured: docs/inference.md, "The wide layer in exact inference").
  const bool wide = !net.wide.empty();
  std::uint64_t walk_steps = 0, list_entries = 0;
  if (wide && wide_scoring_ == WideScoring::kAuto)
    for (std::size_t s = 0; s < B; ++s) {
      walk_steps += std::uint64_t{num_blocks} * acts.inputs[s].size();
      list_entries += net.wide.entries_of(acts.inputs[s]) + N / 64;
    }
  const bool walk =
      wide && (wide_scoring_ == WideScoring::kAuto ? walk_steps <= list_entries
                                                   : wide_scoring_ == WideScoring::kWalk);
  std::vector<std::size_t> cursor_at(B + 1, 0);
  if (walk)
    for (std::size_t s = 0; s < B; ++s) cursor_at[s + 1] = cursor_at[s] + acts.inputs[s].size();
  const std::vector<WideList> lists =
      wide && !walk ? wide_lists(net, acts, B) : std::vector<WideList>{};
  struct Local {
    std::vector<TopK> per_sample;
    std::vector<float> scores;
    std::vector<std::uint64_t> cursors;
    std::vector<float> wide_sum;
  };
  tbb::enumerable_thread_specific<Local> locals([&] {
    Local l;
    l.per_sample.resize(B);
    l.scores.resize(B * kLd);
    if (walk) {
      l.cursors.resize(cursor_at[B]);
      l.wide_sum.resize(kBlock);
    }
    return l;
  });
  std::vector<float> block_max(std::size_t{num_blocks} * B);
  std::vector<double> block_sum(std::size_t{num_blocks} * B);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, num_blocks, 1), [&](const auto& r) {
    Local& L = locals.local();
    if (walk)
      for (std::size_t s = 0; s < B; ++s)
        net.wide.seek(acts.inputs[s], r.begin() * kBlock, L.cursors.data() + cursor_at[s]);
    for (std::uint32_t blk = r.begin(); blk < r.end(); ++blk) {
      const std::uint32_t j0 = blk * kBlock, n = std::min(kBlock, N - j0);
      scorer->score_block(batch, j0, n, L.scores.data(), kLd);
      for (std::size_t s = 0; s < B; ++s) {
        float* row = L.scores.data() + s * kLd;
        if (walk)
          net.wide.add_block(acts.inputs[s], j0, n, L.cursors.data() + cursor_at[s], row,
                             L.wide_sum.data());
        else if (wide)
          add_wide(lists[s], j0, n, row);
        TopK& t = L.per_sample[s];
        float mx;
        block_sum[blk * B + s] = sk.max_exp_sum(row, n, &mx);
        block_max[blk * B + s] = mx;
        t.offer_block(row, n, j0, k, mx, sk);
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
  for (std::size_t s = 0; s < B; ++s) finish_prediction(merged[s], *loss, N, out[s]);
}

// --- SampledPredictor ------------------------------------------------------------------------

SampledPredictor::SampledPredictor(std::shared_ptr<const Network> net,
                                   std::shared_ptr<OutputSampler> sampler)
    : Predictor(std::move(net)), sampler_(std::move(sampler)) {
  if (!sampler_) fail("sampled prediction needs the model's LSH tables");
}

void SampledPredictor::predict_from_hidden(const HiddenActivations& acts, std::size_t B,
                                           std::uint32_t k, const SearchParams&,
                                           std::vector<Prediction>& out) const {
  out.resize(B);
  if (B == 0) return;
  const Network& net = network();
  OutputSampler& sampler = *sampler_;
  const Kernels& kern = kernels();
  const OutputMatrix* scorer = net.output.get();
  ScorerBatch batch;
  prepare_last_hidden(net, acts, B, batch);
  const std::unique_ptr<Loss> loss = make_loss(net.config().loss);
  struct Local {
    std::vector<std::uint32_t> active;
    std::vector<float> z;
  };
  const bool wide = !net.wide.empty();
  tbb::enumerable_thread_specific<Local> locals;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 4), [&](const auto& r) {
    Local& L = locals.local();
    for (std::size_t s = r.begin(); s < r.end(); ++s) {
      const float* h = acts.last(s);
      sampler.select(h, L.active);
      // A score per label is megabytes at 670k labels: kept per thread across calls.
      thread_local WideScores w;
      if (wide) {
        net.wide.score(acts.inputs[s], w);
        add_wide_candidates(w, kWideCandidates, L.active);
      }
      TopK t;
      L.z.resize(L.active.size());
      scorer->score_rows(batch, s, L.active.data(), L.active.size(), L.z.data());
      if (wide) add_wide_scores(w, L.active, L.z.data());
      for (std::size_t q = 0; q < L.active.size(); ++q) t.offer(L.z[q], L.active[q], k);
      if (!L.z.empty()) {
        const float mx = kern.max(L.z.data(), L.z.size());
        t.add_exp(mx, kern.exp_shift_sum(L.z.data(), L.z.size(), mx));
      }
      finish_prediction(t, *loss, L.active.size(), out[s]);
    }
  });
}

// --- choosing one ----------------------------------------------------------------------------

std::shared_ptr<const Predictor> make_predictor(std::shared_ptr<const Network> net,
                                                const Config& config,
                                                const PredictOptions& options) {
  switch (options.mode) {
    case EvalMode::kExact:
      return std::make_shared<ExactPredictor>(std::move(net));
    case EvalMode::kSampled: {
      if (options.search == SampledSearch::kIndex && options.index)
        return std::make_shared<IndexPredictor>(std::move(net), options.index, options.probes);
      std::shared_ptr<OutputSampler> lsh = make_inference_lsh_sampler(config, *net);
      return std::make_shared<SampledPredictor>(std::move(net), std::move(lsh));
    }
  }
  fail("unknown prediction mode");
}

std::unique_ptr<Predictor> borrow_predictor(const Network& net, EvalMode mode,
                                            OutputSampler* sampler) {
  if (mode == EvalMode::kExact) return std::make_unique<ExactPredictor>(borrowed(&net));
  if (!sampler) fail("sampled prediction needs the model's LSH tables");
  return std::make_unique<SampledPredictor>(borrowed(&net), borrowed(sampler));
}

void predict_topk(const Network& net, std::span<const data::SparseView> inputs, std::uint32_t k,
                  EvalMode mode, OutputSampler* sampler, std::vector<Prediction>& out) {
  borrow_predictor(net, mode, sampler)->predict(inputs, k, out);
}

// --- InferenceModel --------------------------------------------------------------------------

InferenceModel::InferenceModel(const std::string& path, const std::vector<EvalMode>& modes)
    : path_(path) {
  LoadedModel m = load_model(path, /*optimizer_state=*/false);
  config_ = m.config;
  net_ = std::move(m.net);
  // The index is small and cheap to search, so sampled mode comes with it even when the caller
  // did not ask for the LSH tables.
  sampled_.index = OutputIndex::load(path, net_->output->rows(), net_->output->cols());
  make_predictors(modes);
}

InferenceModel::InferenceModel(std::unique_ptr<Network> net, const Config& config,
                               const std::vector<EvalMode>& modes, const PredictOptions& sampled)
    : config_(config), net_(std::move(net)), sampled_(sampled) {
  make_predictors(modes);
}

std::vector<EvalMode> InferenceModel::modes_with(bool lsh) {
  if (lsh) return {EvalMode::kExact, EvalMode::kSampled};
  return {EvalMode::kExact};
}

void InferenceModel::make_predictors(const std::vector<EvalMode>& modes) {
  PredictOptions options = sampled_;
  options.mode = EvalMode::kExact;
  predictors_[EvalMode::kExact] = make_predictor(net_, config_, options);
  std::vector<EvalMode> all = modes;
  if (sampled_.index && sampled_.search == SampledSearch::kIndex) all.push_back(EvalMode::kSampled);
  for (const EvalMode mode : all) {
    options.mode = mode;
    if (!predictors_.count(mode)) predictors_[mode] = make_predictor(net_, config_, options);
  }
}

const std::shared_ptr<const Predictor>& InferenceModel::shared_predictor(EvalMode mode) const {
  const auto it = predictors_.find(mode);
  if (it == predictors_.end())
    fail(std::string(eval_mode_name(mode)) + " prediction needs LSH tables (load with lsh)");
  return it->second;
}

}  // namespace glide::engine
