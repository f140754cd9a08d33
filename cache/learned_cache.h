// A learned cache for one hidden layer (GATI, Balasubramanian et al. 2021): from the layer's
// (L2-normalised) activations to the model's top-1 label, restricted to a hot set of labels.
// Centroid form (the default): one unit-length mean row per hot label (optionally a few per
// label), confidence the best cosine. Linear form: a softmax over the hot labels plus one "other"
// class, confidence the best class's probability. A lookup is a hit when the best class is a hot
// label and its confidence passes the threshold.
//
// CacheModel is an immutable published version (readers share it through a shared_ptr);
// CacheTrainer owns the mutable copy, trains it one example at a time (online SGD on the
// cross-entropy against the model's own top-1), keeps decayed label counts and re-picks the hot
// set as popularity drifts; ThresholdTuner (threshold_tuner.h) sets the thresholds.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/threshold_tuner.h"
#include "common/aligned.h"
#include "engine/evaluator.h"

namespace glide::cache {

// What a cache computes from the layer's normalised activations x (docs/caches.md):
// kLinear: a softmax over w_c . x + b_c for the hot labels and "other"; confidence: the best
// class's probability. kCentroid: per hot label the (normalised) mean of the activations the
// model mapped to it; confidence: the best cosine w_c . x (the "other" row stays unused).
enum class CacheForm : std::uint8_t { kLinear = 0, kCentroid = 1 };
const char* form_name(CacheForm form);
CacheForm parse_form(const std::string& name);  // throws glide::Error

// The centroid form's confidence: kRatio (the default) the ratio test, ratio_confidence() below;
// kCosine the best cosine (caches saved before 2026-11-23 carry thresholds of this one). A
// threshold only means something for the measure it was tuned on. The linear form ignores it.
enum class Confidence : std::uint8_t { kCosine = 0, kRatio = 1 };
const char* confidence_name(Confidence c);
Confidence parse_confidence(const std::string& name);  // throws glide::Error

struct CacheOptions {
  CacheForm form = CacheForm::kCentroid;
  std::uint32_t hot_labels = 1024;         // size of the hot set (classes besides "other")
  float lr = 0.5f;                         // SGD step on normalised activations
  std::uint32_t publish_every = 128;       // examples between published versions
  std::uint32_t hot_refresh_every = 2048;  // counted top-1s between hot-set refreshes (first: 256)
  double count_decay = 0.75;               // label counts are multiplied by this at each refresh
  double min_count = 1.5;                  // decayed count a label needs to be hot
  // kCentroid: a label that reaches min_count between refreshes joins the hot set at once (while
  // it has room), so a recurring input can hit from its next request instead of after the next
  // refresh (up to hot_refresh_every counts later).
  bool admit_early = true;
  // kCentroid: a label may hold up to this many rows (centroids of the inputs mapped to it); an
  // example starts a new one when its cosine to the label's nearest row is below join_cosine.
  // An example also starts a new row of its label when a row of another label is nearer to it
  // (the cache would answer it wrongly), so a popular input its label's mean misses gets a row
  // of its own. hot_labels caps the rows of all labels together.
  std::uint32_t rows_per_label = 4;
  float join_cosine = 0;  // 0: new rows only for inputs another label's row is nearer to
  Confidence confidence = Confidence::kRatio;
  // kCentroid: a layer wider than this is looked up in a CountSketch of its activations this wide
  // (0: never). Rows then cost sketch bytes instead of the layer's width, and a lookup sketch x
  // hot multiply-adds: on a 1024-wide layer 8x less of both at 128. Cosines in the sketch are
  // estimates; the threshold is tuned on them like on exact ones (docs/caches.md).
  std::uint32_t sketch = 128;
  std::uint64_t min_examples = 256;  // no hits before this many examples were learned
};

// Where each of a layer's activations goes in a CountSketch, and with which sign (+1 or -1).
struct CountSketchMap {
  std::vector<std::uint32_t> bucket;
  std::vector<float> sign;
};

class CacheModel {
 public:
  // `sketch` (0: none; ignored unless below dim): rows live in a CountSketch this wide. No
  // defaults: the defaults of a cache are CacheOptions', and the loader passes the file's.
  CacheModel(std::uint32_t layer, std::uint32_t dim, std::vector<std::uint32_t> hot, CacheForm form,
             std::uint32_t sketch);

  // Confidence of the best class; when it is a hot label fills `out` with the top-k hot labels
  // (best first) and their probabilities and returns true via *hot. `scratch` holds the logits.
  // Below `min_confidence` (a miss) only the best hot label is filled in (cheaper).
  float lookup(const float* act, std::uint32_t k, engine::Prediction& out, bool* hot,
               std::vector<float>& scratch, float min_confidence = -2) const;
  // logits of every class (hot labels then "other") for normalised activations `x`.
  void logits(const float* x, float* z) const;

  std::uint32_t layer() const { return layer_; }
  CacheForm form() const { return form_; }
  Confidence confidence() const { return confidence_; }
  void set_confidence(Confidence c) { confidence_ = c; }
  std::uint32_t dim() const { return dim_; }  // the layer's width (what lookup() takes)
  std::uint32_t sketch() const { return sketch_; }
  std::uint32_t row_dim() const { return sketch_ ? sketch_ : dim_; }  // the rows' width
  // The layer's activations `act` (dim() floats) as a unit vector in the rows' space (row_dim()
  // floats): sketched when sketch() > 0, then normalised.
  void project(const float* act, float* x) const;
  std::uint32_t classes() const { return static_cast<std::uint32_t>(hot_.size()) + 1; }
  // The label of each row (class): distinct, except centroid caches with rows_per_label > 1.
  const std::vector<std::uint32_t>& hot() const { return hot_; }
  // Bytes of parameters and hot-set ids (what a serving process holds per version).
  std::size_t bytes() const;
  // kCentroid: replaces the f32 rows by int8 rows with a scale each (4x less memory, integer dots
  // against the input quantised to int16); the published versions are compact, the trainer's and
  // the saved ones are not. weight_row() and bias() are empty afterwards.
  void compact();
  bool is_compact() const { return !q_.empty(); }

  // Row c of the weights (row_dim() floats; the row is padded past that) and the biases.
  const float* weight_row(std::uint32_t c) const { return w_.data() + c * stride_; }
  const std::vector<float>& bias() const { return b_; }
  // A cache from stored parameters: `weights` is classes() rows of row_dim() floats (unpadded).
  static CacheModel from_parameters(std::uint32_t layer, std::uint32_t dim,
                                    std::vector<std::uint32_t> hot, std::span<const float> weights,
                                    std::span<const float> bias, CacheForm form,
                                    std::uint32_t sketch);

  std::uint64_t examples = 0;  // examples learned when this version was published
  std::uint64_t version = 0;

 private:
  friend class CacheTrainer;
  std::uint32_t layer_, dim_, sketch_;
  std::shared_ptr<const CountSketchMap> sketch_map_;  // see sketch_map()
  CacheForm form_;
  Confidence confidence_ = Confidence::kCosine;
  std::size_t stride_;
  std::vector<std::uint32_t> hot_;
  AlignedArray<float> w_;  // classes() x stride_
  std::vector<float> b_;
  std::vector<std::int8_t> q_;  // compact: hot x qstride_
  std::vector<float> qscale_;
  std::size_t qstride_ = 0;
};

// The centroid form's confidence, Lowe's ratio test on cosine distances: 1 - (1 - best) /
// (1 - runner_up), where runner_up is the best cosine of another label; 1 for an input on its
// label's centroid, 0 when another label is as near. It separates the inputs the model maps to
// the nearest label from outsiders better than the best cosine alone: every centroid of ReLU
// activations shares a common direction (cosines of 0.8-0.9 between labels), so a high best
// cosine is common and says little unless the next label is farther (docs/caches.md).
float ratio_confidence(float best, float runner_up);
// The lowest threshold that means anything for a form's confidence: 0 for the ratio test (the
// nearest label is nearer than the next), 0.5 for a probability (the best class is a majority).
double lowest_threshold(CacheForm form);

// x / ||x|| into `out` (zeros stay zeros).
void normalise(const float* x, std::uint32_t n, float* out);

// Everything a cache needs to continue where it stopped: the parameters, the tuned threshold
// and the trainer's decayed label counts (what the model file stores, cache/cache_file.h).
struct CacheState {
  std::shared_ptr<const CacheModel> model;
  double threshold = 0.98;
  std::vector<std::pair<std::uint32_t, float>> counts;  // label -> decayed top-1 count
};

class CacheTrainer {
 public:
  CacheTrainer(std::uint32_t layer, std::uint32_t dim, CacheOptions options);
  // Continues from a saved state (its model's examples count as learned).
  CacheTrainer(const CacheState& state, CacheOptions options);
  // The current parameters and counts (threshold left at its default).
  CacheState state() const;
  // One SGD step towards `label` (the full model's top-1) from raw activations `act`; counts it.
  void add(const float* act, std::uint32_t label);
  // Counts a top-1 towards popularity without training (a hit: its label is the cache's own).
  void count(std::uint32_t label);
  // A copy of the current parameters, to publish.
  std::shared_ptr<const CacheModel> snapshot() const;
  // True when `publish_every` examples arrived since the last snapshot() (then resets).
  bool due() const { return since_publish_ >= options_.publish_every; }
  // True when an example arrived since the last snapshot().
  bool pending() const { return since_publish_ > 0; }
  std::uint64_t examples() const { return examples_; }
  // The parameters being trained (not a published version: for the trainer's own thread).
  const CacheModel& current() const { return model_; }

 private:
  void refresh_hot_set();
  // kCentroid, admit_early: makes `label` hot now when it qualifies and the set has room; returns
  // its class, or the "other" class.
  std::uint32_t admit(std::uint32_t label);
  std::uint32_t append_row(std::uint32_t label);  // a new zero row for `label`; its index
  // kCentroid: is a row of another label nearer to the example in x_ than `cosine`?
  bool nearer_row_of_another_label(std::uint32_t label, float cosine) const;
  // The model over these hot labels, keeping the rows of labels that stay.
  void rebuild(const std::vector<std::uint32_t>& labels);

  CacheOptions options_;
  CacheModel model_;
  std::unordered_map<std::uint32_t, double> counts_;  // decayed top-1 counts per label
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> rows_of_;  // label -> its rows
  std::uint64_t examples_ = 0, counted_ = 0, next_refresh_ = 0;
  mutable std::uint64_t since_publish_ = 0, versions_ = 0;
  std::vector<float> x_, z_;
  std::vector<std::uint32_t> seen_;  // kCentroid: examples averaged into each class's row
};

}  // namespace glide::cache
