/// @file glide/glide.h
/// The glide library: build, train, save, load and query sparse extreme-classification networks
/// (SLIDE-style LSH-sampled output layers) from C++.
///
/// Include this one header and link `glide::glide` (see docs/library.md). It includes only the
/// standard library; the engine stays behind glide::Model's private implementation.
///
/// Errors: every function reports bad input and misuse by throwing glide::Error (glide/error.h)
/// with a message that names the problem; nothing in the library calls exit() or abort().
///
/// Thread-safety, in short: const member functions of a trained or loaded Model (predict,
/// evaluate, save, the accessors) may run from any number of threads at once; the non-const ones
/// (train, train_file, moving or assigning) need exclusive access to that Model. Separate Model
/// objects are independent.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "glide/error.h"
#include "glide/version.h"

/// Everything public lives in namespace glide.
namespace glide {

/// One sparse vector: parallel arrays of 0-based feature ids and their values. Not owned: the
/// arrays must outlive the call they are passed to.
struct SparseVectorView {
  std::span<const std::uint32_t> ids;
  std::span<const float> values;
};

/// A batch of sparse rows (and optionally their labels) in CSR form, viewed without copying.
///
/// Row i has features feature_ids/values[row_offsets[i], row_offsets[i+1]) and labels
/// label_ids[label_offsets[i], label_offsets[i+1]). The rules, checked by every function taking
/// a batch (glide::Error otherwise, naming the rule and the row):
///  - row_offsets has rows() + 1 entries, starts at 0, never decreases and ends at
///    feature_ids.size(); feature_ids and values have the same length;
///  - label_offsets is empty (no labels: fine for predict) or has rows() + 1 entries with the
///    same rules against label_ids;
///  - feature ids are below the model's num_features, label ids below its num_labels, values
///    are finite.
///
/// A default-constructed view is an empty batch (0 rows). Not owned: the arrays must outlive the
/// call the view is passed to. Thread-safety: a plain value; reading it from many threads is fine.
struct SparseBatchView {
  std::span<const std::uint64_t> row_offsets;
  std::span<const std::uint32_t> feature_ids;
  std::span<const float> values;
  std::span<const std::uint64_t> label_offsets;  ///< empty: the rows have no labels
  std::span<const std::uint32_t> label_ids;

  /// Number of rows (0 when row_offsets is empty).
  std::size_t rows() const { return row_offsets.empty() ? 0 : row_offsets.size() - 1; }
};

/// An owning batch in the same CSR form, built row by row (or filled directly) and viewed with
/// view(). Thread-safety: like a std::vector.
struct SparseBatch {
  std::vector<std::uint64_t> row_offsets{0};
  std::vector<std::uint32_t> feature_ids;
  std::vector<float> values;
  std::vector<std::uint64_t> label_offsets{0};
  std::vector<std::uint32_t> label_ids;
  /// Dimensions declared by the file this batch was read from (read_dataset), else 0.
  std::uint32_t num_features = 0;
  std::uint32_t num_labels = 0;

  /// Appends one row. Throws glide::Error when ids and values differ in length.
  void add_row(std::span<const std::uint32_t> ids, std::span<const float> vals,
               std::span<const std::uint32_t> labels = {});
  std::size_t rows() const { return row_offsets.size() - 1; }
  /// A view of all rows and their labels (valid until this batch changes).
  SparseBatchView view() const;
};

/// Checks every rule of SparseBatchView (above) against a model of `num_features` features and
/// `num_labels` labels, without doing anything else; `need_labels`: every row must have a label
/// list (training and evaluation batches). Throws glide::Error naming `where`, the rule and the
/// row, e.g. "training batch: row 3: feature id 900 is out of range (the model has 500
/// features)". Every function taking a batch runs the same checks; this one lets a caller (the
/// Python module) report bad data before it creates or changes a model.
void check_batch(const SparseBatchView& batch, std::uint32_t num_features, std::uint32_t num_labels,
                 bool need_labels, const std::string& where = "batch");

/// Reads a dataset file (.gds, XC text, libsvm; .zst-compressed text too; the format is detected
/// from the content). Throws glide::Error for a missing, unreadable or malformed file.
SparseBatch read_dataset(const std::string& path);

/// How the output layer picks the neurons it computes for each training sample.
enum class Sampling {
  kLsh,     ///< LSH tables over the output neurons' weights (SLIDE); the default
  kRandom,  ///< uniformly random negatives shared by a batch (sampled softmax)
  kDense,   ///< every neuron (exact softmax; for small label sets)
};

/// The training loss over the labels.
enum class Loss {
  kSoftmax,  ///< softmax cross-entropy over the labels (scores are probabilities)
  kSigmoid,  ///< one-vs-all logistic loss (scores are per-label sigmoids)
};

/// Whether a network has the wide layer (NetworkOptions::wide).
enum class Wide {
  kOff,  ///< the network alone
  kOn,   ///< the wide layer beside the hidden layers
  /// The default: a new model's first training trains the network alone for up to 2 epochs on
  /// its data less points held out, and keeps the wide layer unless the network alone scores
  /// higher (P@1 + P@5) on those points, and then trains kTail (docs/training.md). The trained
  /// model's config says which.
  kAuto,
  /// The network alone plus the rare labels' path: a wide layer started at zero over the labels
  /// with at most NetworkOptions::wide_tail_points training points, at the network alone's lrs.
  kTail,
};

/// How predictions score the labels.
enum class PredictMode {
  kExact,  ///< every label is scored
  /// Only candidate labels, each scored exactly: those of the model's output index when it has
  /// one (Model::has_index(); PredictOptions::probes sets how many it proposes), else those the
  /// LSH tables retrieve. Faster and approximate: the answer is the exact one whenever the exact
  /// top-k are among the candidates; fewer than k labels (even none) when there are fewer
  /// candidates. LSH tables are visited in a random order, as in training, so repeated
  /// predictions through them may differ slightly; exact ones and the index's never do.
  kSampled,
};

/// How predict() and evaluate() score the labels, per call.
struct PredictOptions {
  PredictMode mode = PredictMode::kExact;
  /// Sampled mode through an output index: how many of the index's clusters are searched (their
  /// labels are the candidates). More finds more of the exact top-k and scores more labels
  /// (slower); it is clamped to the index's cluster count. 0: the default (8). Exact mode and
  /// the LSH tables ignore it. The same knob as `glide predict --probes` and a request's
  /// "probes" field.
  std::uint32_t probes = 0;
};

/// LSH tables of the output layer (Sampling::kLsh training and PredictMode::kSampled). One table
/// set takes L x 2^range_pow x (bucket_size + 1) x 4 bytes: 35 MB at the defaults, so lower
/// range_pow for small label sets.
struct LshOptions {
  std::string family = "dwta";     ///< simhash | wta | dwta | doph
  std::uint32_t K = 6;             ///< hash bits per table key, 1..32
  std::uint32_t L = 8;             ///< tables, 1..4096
  std::uint32_t range_pow = 15;    ///< log2 of buckets per table, 1..30
  std::uint32_t bucket_size = 32;  ///< ids kept per bucket, 1..4096
};

/// How a hidden layer after the first computes its neurons: all of them (dense), or only the
/// ones its own LSH tables over the neurons' weights select for each input (in training and in
/// inference alike). The first hidden layer reads the sparse input and is always dense.
struct HiddenLayerSampling {
  bool sampled = false;
  double sparsity = 0.05;  ///< fraction of the layer's neurons active per input, (0, 1]
  LshOptions lsh{.family = "dwta", .K = 2, .L = 16, .range_pow = 6, .bucket_size = 64};
};

/// The shape of a network: sparse input -> ReLU hidden layers -> output over all labels.
struct ModelConfig {
  std::uint32_t num_features = 0;          ///< input dimension (> 0)
  std::uint32_t num_labels = 0;            ///< output dimension (> 0)
  std::vector<std::uint32_t> hidden{128};  ///< hidden layer sizes, at least one, each 1..65536
  /// Empty (every hidden layer dense) or one entry per hidden layer.
  std::vector<HiddenLayerSampling> hidden_sampling;
  Loss loss = Loss::kSoftmax;
  Sampling sampling = Sampling::kLsh;
  double sparsity = 0.0025;  ///< fraction of output neurons active per training sample, (0, 1]
  LshOptions lsh;
  /// The wide layer: sparse input -> label weights beside the hidden layers, started at each
  /// label's centroid of its training points (docs/training.md).
  Wide wide = Wide::kAuto;
  std::uint32_t wide_max_per_label = 256;  ///< > 0
  double wide_min_weight = 0.1;            ///< [0, 1]: weights below this x a label's largest drop
  double wide_init = 30;                   ///< [0, 1e4]: each label's weights' norm at the start
  /// A label's starting weights are its points' summed inputs over their norm to this power:
  /// "1" (each label normalised), "0" (frequent labels score higher), "0.25", "0.5", "0.75", or
  /// "auto" (the best on training points held out of a first build).
  std::string wide_norm_power = "auto";
  /// Rounds of splitting each training point's inputs among its labels, by how well each label's
  /// centroid explains them, before the centroids are summed: "0", "1", "2", or "auto" (chosen
  /// with the norm power on held-out training points).
  std::string wide_share_rounds = "auto";
  std::string wide_contrast = "auto";  ///< auto | 0 | 1 (docs/training.md, "Contrast")
  /// Wide::kTail: the labels with at most this many training points get wide weights (> 0).
  std::uint32_t wide_tail_points = 20;
  std::uint64_t seed = 1;  ///< weight initialisation and hash functions
};

/// Training settings (saved in the model file with the weights).
struct TrainOptions {
  std::string optimizer = "adam";  ///< hidden and input layers: adam | sgd | adagrad
  /// Their learning rate, [0, 10). 0 in lr, output_lr and output_eps: the value measured for
  /// the network, as in the CLI and a config file: beside the wide layer lr 3e-4, output_lr
  /// 0.002, output_eps 0.1; without it 0.01, 0.035 and 1e-7.
  double lr = 0;
  std::string output_optimizer = "adagrad";  ///< the output layer's: adagrad | adam | sgd
  double output_lr = 0;                      ///< its learning rate, [0, 10) (0: see lr)
  double output_eps = 0;  ///< its optimizer's epsilon, [0, 10]: smaller gradients, smaller steps
  /// The wide layer's learning rate (Adagrad), [0, 10); 0: 0.05 for the centroid start
  /// (Wide::kOn), 0.5 for the rare labels' path (Wide::kTail).
  double wide_lr = 0;
  std::uint32_t batch = 256;  ///< samples per step, 1..65536
  double epochs = 5;          ///< passes over the data (> 0; may be fractional)
  std::uint32_t threads = 0;  ///< worker threads while training (0: every core)
  std::uint64_t seed = 1;     ///< visiting order of the samples
  /// Stop after this much training time, evaluations excluded (0: none); the lr schedule ends
  /// there or at `epochs`, whichever comes first.
  double max_seconds = 0;
  /// Evaluate the test data every eval_every batches (0: after each epoch) on its first
  /// eval_points rows; only when a test batch is given.
  std::uint32_t eval_every = 0;
  std::uint32_t eval_points = 1000;
  /// kSampled scores through LSH tables built over the output rows at each evaluation (in its
  /// time, not the training time's); the output index is built after training.
  PredictMode eval_mode = PredictMode::kExact;
  std::uint32_t rebuild_every = 200;  ///< batches between LSH table refreshes (> 0)
  double rebuild_growth = 1.1;        ///< that interval grows by this factor (>= 1)
  /// "linear": lr falls linearly to lr_final * lr over `epochs`; "constant" keeps it.
  std::string lr_schedule = "linear";
  double lr_final = 0.1;  ///< in [0, 1]
  double lr_decay = 0.7;  ///< the lr is also multiplied by this per epoch trained, (0, 1]
  /// At the end (unless stopped by the progress callback), build the output index from the
  /// training data, as `glide train --index on` does: sampled mode then searches it.
  bool build_index = true;
  /// Validation (not saved with the model): hold this many of the training rows out (every
  /// (rows / valid_points)-th; at most half of them), score them all at every evaluation point
  /// (eval_every, else each epoch) and at the end, and keep the weights of the best validation
  /// rather than the last (docs/training.md, "Keeping the best model"). 0: off.
  std::uint32_t valid_points = 0;
  std::string best_by = "p1+p5";  ///< the best validation's measure: p1+p5 | p1 | p5 | psp5
  /// With valid_points: stop after this many validations in a row without a new best (0: train
  /// every planned epoch).
  std::uint32_t patience = 0;
};

/// Ranking quality over the rows that have labels (rows without labels are skipped).
struct Metrics {
  double precision[5] = {};  ///< precision[k-1] = P\@k, k = 1..5
  double ndcg[5] = {};       ///< ndcg[k-1] = nDCG\@k
  std::size_t points = 0;    ///< rows evaluated
  double seconds = 0;        ///< wall time of the evaluation
  /// Evaluations during training, evaluate(data, train), and evaluate(data) of a model that
  /// keeps its training set's label counts: propensity-scored precision, each correct label
  /// weighted by its rarity in the training data (1 + C (N_l + 1.5)^-0.55, as `glide eval`),
  /// over the most each row's own labels could score.
  bool has_psp = false;
  double psp[5] = {};  ///< psp[k-1] = PSP\@k when has_psp

  /// P\@k for k in 1..5 (glide::Error otherwise).
  double p_at(int k) const;
  /// nDCG\@k for k in 1..5 (glide::Error otherwise).
  double ndcg_at(int k) const;
  /// PSP\@k for k in 1..5 (glide::Error otherwise, or without has_psp).
  double psp_at(int k) const;
};

/// What the training callback sees after every batch, and after every evaluation.
struct TrainProgress {
  double epoch = 0;               ///< fractional epochs done in this call
  std::uint64_t samples = 0;      ///< samples trained in this call
  std::uint64_t batches = 0;      ///< batches trained by this model so far (all calls)
  double seconds = 0;             ///< training time of this call (evaluations excluded)
  double eval_seconds = 0;        ///< time of this call's evaluations
  double loss = 0;                ///< moving average of the batch losses
  double samples_per_second = 0;  ///< throughput of this call over its training time
  double eta_seconds = 0;         ///< estimated time left
  bool has_eval = false;          ///< true when `eval` was just computed on the test batch
  Metrics eval;                   ///< valid when has_eval
  /// True when `validation` was just computed on the held-out rows (valid_points); `best`
  /// when it is the best so far.
  bool has_validation = false;
  bool best = false;
  Metrics validation;
};

/// Called on the training thread after every batch and every evaluation; keep it cheap. Return
/// false to stop training after the current batch (early stopping). An exception thrown by the
/// callback stops training and propagates out of train().
using ProgressCallback = std::function<bool(const TrainProgress&)>;

/// The outcome of one train() call.
struct TrainResult {
  std::uint64_t samples = 0;  ///< samples trained in this call (not the wide check's)
  std::uint64_t batches = 0;  ///< batches trained by this model so far
  double seconds = 0;         ///< training time (evaluations excluded)
  double eval_seconds = 0;    ///< time of the evaluations during training
  /// Time before the first batch, not in `seconds`: the sampler's tables and, for a new model, the
  /// wide layer's start (its choice on held-out points and its build) and, with Wide::kAuto, its
  /// check against the network alone (whose training is here).
  double setup_seconds = 0;
  double loss = 0;  ///< final moving average of the batch losses
  double samples_per_second = 0;
  /// The call ended before its planned epochs: the callback asked to stop, max_seconds ran
  /// out, or patience ended it.
  bool stopped = false;
  /// With valid_points: the best validation's metrics and where it came (samples of this call,
  /// fractional epochs); the model holds that validation's weights. `patience_stopped` when
  /// patience ended the call.
  bool has_validation = false;
  Metrics best_validation;
  std::uint64_t best_samples = 0;
  double best_epoch = 0;
  bool patience_stopped = false;
};

/// Top-k labels of one input, best first.
struct Prediction {
  std::vector<std::uint32_t> labels;
  std::vector<float> scores;  ///< softmax probabilities, or sigmoids for Loss::kSigmoid
  std::uint32_t scored = 0;   ///< labels scored for it: every label in exact mode, fewer sampled
};

/// A network with its weights, optimizer state and config.
///
/// A default-constructed Model is empty: every member except empty(), load/create (static) and
/// assignment throws glide::Error("... the model is empty ...").
///
/// Thread-safety: const members (predict, evaluate, save, accessors) are safe from any number
/// of threads at once on the same Model; exact predictions are bit-identical to single-threaded
/// ones.
/// train() and train_file() must not run concurrently with anything else on the same Model
/// (one caller trains; predict after it returns). Movable, not copyable.
class Model {
 public:
  /// An empty model (see load() and create()).
  Model() noexcept;
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// A freshly initialised network. Throws glide::Error naming the first invalid field.
  static Model create(const ModelConfig& config, const TrainOptions& train = {});
  /// The same from a JSON config, the format `glide train --print-config` prints:
  /// {"network": {"num_features": ..., "num_labels": ..., "hidden": [...], "loss": "softmax",
  ///  "sampling": "lsh", "sparsity": ..., "seed": ..., "lsh": {...}}, "train": {...}}.
  /// Missing keys keep their defaults; unknown keys, wrong types and invalid values throw.
  static Model create_from_json(const std::string& json);
  /// Loads a .glide model file (written by save() or `glide train`). With optimizer_state
  /// false the Adam moments are not read (less memory; training then restarts them at zero).
  /// Throws glide::Error for a missing, unreadable, damaged or incompatible file.
  static Model load(const std::string& path, bool optimizer_state = true);
  /// Writes the model atomically (a crash leaves the old file or the new one). With
  /// optimizer_state the Adam moments are included, so training can resume exactly. The output
  /// index, when the model has one, is saved with it.
  void save(const std::string& path, bool optimizer_state = true) const;

  /// Converts the output layer, in place, to an inference-only precision, as `glide quantize`
  /// does: "int8" (weights as int8 with a scale per row, `granularity` "row", or one for the
  /// whole layer, "tensor") or "bf16". Hidden layers stay fp32; the optimizer state of the
  /// output layer is dropped; the output index is kept. An int8 model cannot be trained
  /// further. Throws glide::Error for an unknown precision or granularity and for a model that
  /// is already quantized.
  void quantize(const std::string& precision = "int8", const std::string& granularity = "row");
  /// The output layer's precision: "fp32", "int8" or "bf16".
  std::string precision() const;

  /// Builds the output index that sampled mode searches (as `glide index` does) from the
  /// model's training data (every row needs labels), replacing any index the model had. train()
  /// builds one at its end (TrainOptions::build_index) or drops the old one, whose clusters
  /// describe the old weights. load() reads the index of a file that has one.
  void build_index(const SparseBatchView& train);
  /// True when sampled mode searches an output index (else the LSH tables).
  bool has_index() const;

  /// True for a default-constructed or moved-from Model.
  bool empty() const noexcept;
  explicit operator bool() const noexcept { return !empty(); }

  std::uint32_t num_features() const;
  std::uint32_t num_labels() const;
  ModelConfig config() const;
  /// The training settings stored with the model (those of the last train() call, or of its
  /// creation): a starting point for the next train() call.
  TrainOptions train_options() const;
  /// The whole config as JSON (the format create_from_json() reads).
  std::string config_json() const;
  /// Samples trained since the model was created (across train() calls and save/load).
  std::uint64_t samples_trained() const;

  /// Trains on an in-memory batch (every row needs labels). The batch is validated first, then
  /// copied once into the engine's dataset. `test` (optional, with labels) is evaluated every
  /// options.eval_every batches / each epoch and reported through `on_progress`. The updates made
  /// so far are kept if training stops early or throws.
  TrainResult train(const SparseBatchView& data, const TrainOptions& options,
                    const ProgressCallback& on_progress = {}, const SparseBatchView& test = {});
  /// Trains on a dataset file (see read_dataset()), with an optional test file ("" for none).
  TrainResult train_file(const std::string& path, const TrainOptions& options,
                         const ProgressCallback& on_progress = {},
                         const std::string& test_path = "");

  /// Top-k labels of one input (k >= 1; k above num_labels() returns every label).
  Prediction predict(SparseVectorView input, std::uint32_t k,
                     PredictMode mode = PredictMode::kExact) const;
  /// The same with per-call options, e.g. {.mode = PredictMode::kSampled, .probes = 16}.
  Prediction predict(SparseVectorView input, std::uint32_t k, const PredictOptions& options) const;
  /// Top-k labels of every row of a batch (labels, if any, are ignored), computed in parallel.
  std::vector<Prediction> predict(const SparseBatchView& inputs, std::uint32_t k,
                                  PredictMode mode = PredictMode::kExact) const;
  std::vector<Prediction> predict(const SparseBatchView& inputs, std::uint32_t k,
                                  const PredictOptions& options) const;
  /// P\@1..5 and nDCG\@1..5 of the batch's rows against their labels (label_offsets required),
  /// and PSP\@1..5 where the model keeps its training set's label counts (trained by train() or
  /// `glide train`; a model without them, e.g. a shard or an older file, gives has_psp false).
  Metrics evaluate(const SparseBatchView& data, PredictMode mode = PredictMode::kExact) const;
  Metrics evaluate(const SparseBatchView& data, const PredictOptions& options) const;
  /// The same, and PSP\@1..5 (Metrics::has_psp): each label weighted by its rarity among the
  /// rows of `train`, the training data, as `glide eval --train` weighs it.
  Metrics evaluate(const SparseBatchView& data, const SparseBatchView& train,
                   const PredictOptions& options = {}) const;
  /// The same over a dataset file.
  Metrics evaluate_file(const std::string& path, PredictMode mode = PredictMode::kExact) const;
  Metrics evaluate_file(const std::string& path, const PredictOptions& options) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  const Impl& impl(const char* what) const;
  Impl& impl(const char* what);
};

/// The default config as JSON (the format Model::create_from_json() reads), with
/// num_features and num_labels 0: every key a config may set, with its default value.
std::string default_config_json();

/// The library's version ("MAJOR.MINOR.PATCH"), as compiled into the library (compare with
/// GLIDE_VERSION_STRING, the headers' version).
const char* version() noexcept;

}  // namespace glide
