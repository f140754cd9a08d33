// Top-k prediction behind one interface, in the manner of an index: a Predictor answers a batch of
// sparse inputs with the k best labels of each. ExactPredictor scores every output row,
// SampledPredictor only the rows its LSH tables retrieve; a wrapper (cache/cached_predictor.h)
// runs the hidden layers itself and hands the rest to the predictor it wraps. make_predictor()
// is the one place a predictor is chosen.
//
// InferenceModel is a model file loaded for serving: its network and config, and one Predictor
// per mode it was loaded for (what `glide predict`, `glide eval` and the REST server hold).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/config.h"
#include "engine/network.h"

namespace glide::engine {

class OutputSampler;

enum class EvalMode { kExact, kSampled };
EvalMode parse_eval_mode(const std::string& s);
const char* eval_mode_name(EvalMode m);  // "exact", "sampled"

struct Prediction {
  std::vector<std::uint32_t> labels;  // best first
  std::vector<float> scores;          // softmax probabilities (sigmoid for one-vs-all models)
  std::uint32_t scored = 0;           // output neurons scored for it (0: answered before them)
  // The hidden layer after which an early exit (a learned cache) answered; -1: the output layer.
  int exit_layer = -1;
};

// The exit_layer of each prediction.
std::vector<int> exit_layers(std::span<const Prediction> predictions);

class OutputIndex;

// Per-call settings of a search; a predictor ignores what it has no use for (a request's
// "probes" field, `--probes`, the library's option all end here).
struct SearchParams {
  // Sampled mode: clusters of the output index whose labels are candidates (engine/
  // output_index.h); more finds more of the exact top-k and scores more labels. 0: the
  // predictor's default.
  std::uint32_t probes = 0;
};

// What sampled mode searches: the output index (engine/output_index.h; the model file's, built
// from the training data) or the LSH tables built over the output rows (models without an index,
// and comparisons).
enum class SampledSearch { kIndex, kLsh };

// What make_predictor builds.
struct PredictOptions {
  EvalMode mode = EvalMode::kExact;
  SampledSearch search = SampledSearch::kIndex;
  // The default of SearchParams::probes (0: OutputIndex::kDefaultProbes).
  std::uint32_t probes = 0;
  // The model file's index (sampled mode with kIndex); null: the LSH tables instead.
  std::shared_ptr<const OutputIndex> index;
};

class Predictor {
 public:
  virtual ~Predictor() = default;

  // Top-k labels of each input, best first; k above the label count gives every label. Checks k
  // and every input first (glide::Error "input N: ..."). Thread-safe; parallel inside (TBB).
  void predict(std::span<const data::SparseView> inputs, std::uint32_t k,
               std::vector<Prediction>& out, const SearchParams& params = {}) const;
  // The output layer alone: top-k (1 <= k <= labels) of rows [0, batch) of `acts`, whose hidden
  // layers are computed. For wrappers that run the hidden layers themselves (early exits).
  virtual void predict_from_hidden(const HiddenActivations& acts, std::size_t batch,
                                   std::uint32_t k, const SearchParams& params,
                                   std::vector<Prediction>& out) const = 0;
  // True when predictions may come from an early exit (exit_layer >= 0): callers that report
  // where an answer came from (the server's "cached" field) ask.
  virtual bool exits_early() const { return false; }
  // Throws glide::Error "input N: ..." when an input is unusable (input_problem()).
  void check_input(const data::SparseView& x, std::size_t index) const;

  const Network& network() const { return *net_; }
  const std::shared_ptr<const Network>& shared_network() const { return net_; }

 protected:
  explicit Predictor(std::shared_ptr<const Network> net);
  // predict() after its checks, with k clamped. Default: every hidden layer, then
  // predict_from_hidden.
  virtual void predict_checked(std::span<const data::SparseView> inputs, std::uint32_t k,
                               const SearchParams& params, std::vector<Prediction>& out) const;

 private:
  std::shared_ptr<const Network> net_;
};

// Scores every output row (one pass over the output weights per batch of inputs).
// How the exact predictor adds the wide layer's scores to each block of labels: walking each
// input's label lists block by block (WideLayer::add_block), from lists of each input's labels
// (wide_lists, add_wide), or whichever costs less for the batch (kAuto, the default; the same
// scores either way, which tests check by forcing each).
enum class WideScoring { kAuto, kWalk, kLists };

class ExactPredictor final : public Predictor {
 public:
  explicit ExactPredictor(std::shared_ptr<const Network> net,
                          WideScoring wide_scoring = WideScoring::kAuto)
      : Predictor(std::move(net)), wide_scoring_(wide_scoring) {}
  void predict_from_hidden(const HiddenActivations& acts, std::size_t batch, std::uint32_t k,
                           const SearchParams& params, std::vector<Prediction>& out) const override;

 private:
  WideScoring wide_scoring_;
};

// Scores only the output rows `sampler` selects for each input (its LSH tables). The sampler's
// select() must be safe from many threads (inference samplers are).
class SampledPredictor final : public Predictor {
 public:
  SampledPredictor(std::shared_ptr<const Network> net, std::shared_ptr<OutputSampler> sampler);
  void predict_from_hidden(const HiddenActivations& acts, std::size_t batch, std::uint32_t k,
                           const SearchParams& params, std::vector<Prediction>& out) const override;

 private:
  std::shared_ptr<OutputSampler> sampler_;
};

// The predictor `options` ask for over `net` (built with `config`). Sampled mode searches
// options.index, or builds LSH tables over the output rows (SampledSearch::kLsh, or no index).
std::shared_ptr<const Predictor> make_predictor(std::shared_ptr<const Network> net,
                                                const Config& config,
                                                const PredictOptions& options);

// A predictor over a network (and sampler) the caller keeps alive and may change between calls:
// evaluation while training (sampled mode with the trainer's own tables). Throws for sampled mode
// without a sampler.
std::unique_ptr<Predictor> borrow_predictor(const Network& net, EvalMode mode,
                                            OutputSampler* sampler);

// What is wrong with `x` as an input of a model with `num_features` features, or "" when nothing:
// ids and values of different lengths, a feature id out of range, a non-finite value. The one
// statement of these rules (the library checks its batches with it too).
std::string input_problem(const data::SparseView& x, std::uint32_t num_features);

// A model loaded for inference, with a predictor per mode it was loaded for. Thread-safe.
class InferenceModel {
 public:
  // Loads `path` (weights only), with a predictor for exact mode and for each of `modes`
  // (make_predictor(); sampled mode uses the file's output index, or LSH tables without one).
  // A file with an output index always gets sampled mode (it costs no tables).
  InferenceModel(const std::string& path, const std::vector<EvalMode>& modes);
  // `sampled`: how sampled mode is made (its index, default probes); its mode is ignored.
  InferenceModel(std::unique_ptr<Network> net, const Config& config,
                 const std::vector<EvalMode>& modes, const PredictOptions& sampled = {});
  // With `lsh`: exact and sampled mode; without: exact mode, and sampled mode only through the
  // file's output index (no LSH tables are built).
  explicit InferenceModel(const std::string& path, bool lsh = true)
      : InferenceModel(path, modes_with(lsh)) {}
  InferenceModel(std::unique_ptr<Network> net, const Config& config, bool lsh = true)
      : InferenceModel(std::move(net), config, modes_with(lsh)) {}

  // The predictor of `mode`; throws glide::Error when the model was loaded without it.
  const Predictor& predictor(EvalMode mode) const { return *shared_predictor(mode); }
  const std::shared_ptr<const Predictor>& shared_predictor(EvalMode mode) const;
  const std::map<EvalMode, std::shared_ptr<const Predictor>>& predictors() const {
    return predictors_;
  }
  // predictor(mode).predict(...).
  void predict(std::span<const data::SparseView> inputs, std::uint32_t k, EvalMode mode,
               std::vector<Prediction>& out, const SearchParams& params = {}) const {
    predictor(mode).predict(inputs, k, out, params);
  }

  const Network& network() const { return *net_; }
  const Config& config() const { return config_; }
  bool has_sampled() const { return predictors_.count(EvalMode::kSampled) > 0; }
  const std::string& path() const { return path_; }  // "" when built in memory

 private:
  static std::vector<EvalMode> modes_with(bool lsh);
  void make_predictors(const std::vector<EvalMode>& modes);

  std::string path_;
  Config config_;
  std::shared_ptr<const Network> net_;
  PredictOptions sampled_;  // the index (the model file's, when it has one), default probes
  std::map<EvalMode, std::shared_ptr<const Predictor>> predictors_;
};

// Each input's wide-layer scores (engine/wide_layer.h) as (label, score), ascending labels; empty
// for a network without a wide layer. `acts` holds the inputs (forward_hidden's).
using WideList = std::vector<std::pair<std::uint32_t, float>>;
std::vector<WideList> wide_lists(const Network& net, const HiddenActivations& acts, std::size_t B);
// Adds the entries of `list` with labels in [j0, j0 + n) to scores[label - j0].
void add_wide(const WideList& list, std::uint32_t j0, std::uint32_t n, float* scores);
// Sampled prediction, from one input's wide scores (WideLayer::score): appends those of its
// `count` best-scoring labels (ties: the lower label first; best first) that `labels` lacks (the
// wide layer finds labels the output index or LSH tables may not)...
void add_wide_candidates(const WideScores& wide, std::uint32_t count,
                         std::vector<std::uint32_t>& labels);
// ... and adds each candidate's wide score to its logit z[q].
void add_wide_scores(const WideScores& wide, std::span<const std::uint32_t> labels, float* z);
// How many labels add_wide_candidates adds in sampled prediction.
inline constexpr std::uint32_t kWideCandidates = 64;

// Top-k through borrow_predictor(net, mode, sampler) (tests and benchmarks of a bare network).
void predict_topk(const Network& net, std::span<const data::SparseView> inputs, std::uint32_t k,
                  EvalMode mode, OutputSampler* sampler, std::vector<Prediction>& out);

}  // namespace glide::engine
