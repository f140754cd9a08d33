// The wide layer: a sparse linear map from the input features straight to the labels, beside the
// hidden layers. Its scores add to the output layer's logits:
//   logit(l) = w_l . h(x) + b_l + sum_f x_f V[f, l].
// V holds only the (feature, label) pairs the training data puts together: a label's weights on
// the features of its training points, the larger ones, at most max_per_label of them. They are
// stored feature by feature (an inverted index), so an input reaches every label it scores through
// its own features' lists: about nnz(x) x entries / features additions, where the output layer
// costs labels x hidden. The hidden layers are a bottleneck that cannot hold hundreds of thousands
// of labels with a handful of examples each; the wide layer holds them (docs/training.md).
//
// V starts at each label's centroid of its training points and trains with the rest of the network
// (Adagrad, TrainConfig::wide_lr).
#pragma once
#include <atomic>
#include <bit>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/aligned.h"
#include "data/dataset.h"
#include "engine/active_pairs.h"
#include "engine/setup_log.h"

#include <tbb/enumerable_thread_specific.h>

namespace glide::engine {

struct LabelNeighbours;  // engine/wide_centroids.h

struct WideOptions {
  std::uint32_t max_per_label = 256;  // a label's largest centroid weights kept
  // Weights below this fraction of the label's largest are dropped: features common to many
  // labels' points (stop words) would otherwise reach most labels from every input.
  float min_weight = 0.1f;
  // Label l starts at S_l / |S_l|^norm_power, S_l the sum of its points' inputs, scaled so that a
  // label of median |S_l| has norm init_scale. 1 normalises every label: right where each label
  // has its own features. 0 keeps the sums, so labels seen more often score higher: right where
  // labels share features and their frequency predicts them (text). Negative: chosen among
  // kNormPowers by the P@1 of training points held out of a first build (choose_start).
  float norm_power = 1;
  // Rounds of splitting each point's feature values among its labels by how well each label's
  // centroid explains them (EM over a mixture of the labels' feature distributions); 0: every
  // label of a point gets its whole input.
  std::uint32_t share_rounds = 0;
  // How much of the mean of each label's nearest labels' centroids is taken off its own, on its
  // features (contrast_with_neighbours); 0: none.
  float contrast = 0;
  // The rounds hold every label's unpruned sums at once, up to one (label, feature) entry per
  // nonzero of each point per label of it: more than this many and they are refused (chosen:
  // skipped), where the plain sums prune label by label.
  std::uint64_t max_share_entries = std::uint64_t{1} << 27;
  float init_scale = 10;
  // The label norm that starts at init_scale; 0: the median of the labels' norms (a shard of the
  // labels passes its whole training set's, so that it starts as one process would).
  double reference_norm = 0;
  // Only labels with at most this many training points get weights (the rare labels' path,
  // WideMode::kTail); 0: every label.
  std::uint32_t max_points = 0;
};

inline constexpr float kNormPowers[] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f};
inline constexpr std::uint32_t kShareRounds[] = {0, 1, 2};
inline constexpr float kContrasts[] = {0.0f, 1.0f};

// The start choose_start found, with the held-out P@1 and P@5 of each candidate tried
// ([share rounds][contrast][norm power], as indexed in kShareRounds, kContrasts and kNormPowers).
struct WideStartChoice {
  float norm_power = 1;
  std::uint32_t share_rounds = 0;
  float contrast = 0;
  std::uint32_t held_out = 0;  // 0: too few points to hold any out; nothing was chosen
  // Why no share rounds were tried (engine/wide_centroids.h, share_rounds_obstacle); empty when
  // they were or were not to be chosen.
  std::string rounds_not_tried;
  static constexpr std::size_t kRounds = std::size(kShareRounds),
                               kContrastCount = std::size(kContrasts),
                               kPowers = std::size(kNormPowers);
  bool tried[kRounds][kContrastCount][kPowers] = {};
  float p_at_1[kRounds][kContrastCount][kPowers] = {};
  float p_at_5[kRounds][kContrastCount][kPowers] = {};
};

// The training points a wide start's choice scores, out of n: every (n / count)-th of
// count = min(2000, n / 10) points, spread over the file; none when that is under 100.
std::vector<std::size_t> held_out_points(std::size_t n);

// One input's wide scores over every label (a per-thread scratch, reused across inputs).
class WideScores {
 public:
  void resize(std::uint32_t labels);
  // The score of label l, and whether the input reached it at all.
  float operator[](std::uint32_t l) const { return scores_[l]; }
  bool reached(std::uint32_t l) const { return (reached_[l / 64] >> (l % 64)) & 1; }
  // The labels the input reached, in the order first reached.
  std::span<const std::uint32_t> labels() const { return labels_; }
  // fn(l) for every label reached, in ascending order: a walk over a bit per label, one word
  // read per 64 labels and one step per label reached, where sorting labels() costs
  // reached x log(reached) comparisons.
  template <class Fn>
  void for_each_in_order(Fn&& fn) const {
    for (std::size_t word = 0; word < reached_.size(); ++word)
      for (std::uint64_t bits = reached_[word]; bits; bits &= bits - 1)
        fn(static_cast<std::uint32_t>(word * 64 + static_cast<unsigned>(std::countr_zero(bits))));
  }
  // Forgets the last input (touches only what it reached).
  void clear();

 private:
  friend class WideLayer;
  std::vector<float> scores_;
  std::vector<std::uint64_t> reached_;  // a bit per label
  std::vector<std::uint32_t> labels_;
};

// One of a label's entries on a training batch's features: the entry's index in the layer's
// label-major arrays, and the feature's index among the batch's (WideBatch::samples).
struct WideHit {
  std::uint64_t at;
  std::uint32_t feature;
};

// A training batch's inputs grouped by feature: the samples that have each feature, with their
// values. A label's wide score and gradient then come from its own entries' features, looked up
// here, rather than from every sample's features' whole label lists. WideLayer::add_scores notes
// each label's hits here for train_step.
class WideBatch {
 public:
  // Features >= num_features are left out (the model never saw them).
  void build(std::span<const data::SparseView> inputs, std::uint32_t num_features);
  // 1 + the index of feature f among the batch's features, or 0 when no input has it.
  std::uint32_t slot(std::uint32_t f) const { return slot_[f]; }
  // The samples having the batch's k-th feature (k = slot(f) - 1), and their values of it.
  std::span<const std::uint32_t> samples(std::uint32_t k) const {
    return {samples_.data() + offsets_[k], offsets_[k + 1] - offsets_[k]};
  }
  std::span<const float> values(std::uint32_t k) const {
    return {values_.data() + offsets_[k], offsets_[k + 1] - offsets_[k]};
  }
  // The hits add_scores found for its pairs' i-th neuron.
  std::span<const WideHit> hits(std::size_t i) const {
    const HitRange& h = hit_ranges_[i];
    return h.list ? std::span<const WideHit>(h.list->data() + h.begin, h.end - h.begin)
                  : std::span<const WideHit>();
  }

 private:
  friend class WideLayer;
  struct HitRange {
    const std::vector<WideHit>* list = nullptr;  // the thread-local list holding them
    std::size_t begin = 0, end = 0;
  };
  std::vector<HitRange> hit_ranges_;  // per neuron of the pairs add_scores scored
  tbb::enumerable_thread_specific<std::vector<WideHit>> hit_lists_;
  std::vector<std::uint32_t> slot_;      // per model feature
  std::vector<std::uint32_t> features_;  // the batch's distinct features, first seen first
  std::vector<std::uint32_t> offsets_, samples_;
  std::vector<float> values_;
};

class WideLayer {
 public:
  WideLayer() = default;

  // The centroids of `train`'s labels (`num_features` x `num_labels` model; the data may use
  // fewer). Labels without points get no entries.
  // options.norm_power must be in [0, 1] (choose_start first for a negative one). With contrast,
  // `neighbours` (choose_start's) spare the search for the labels they have neighbours for.
  static WideLayer from_centroids(const data::Dataset& train, std::uint32_t num_features,
                                  std::uint32_t num_labels, const WideOptions& options,
                                  const LabelNeighbours* neighbours = nullptr);
  // The median of `train`'s labels' centroid norms (before scaling), over labels with entries.
  static double median_norm(const data::Dataset& train, std::uint32_t num_features,
                            std::uint32_t num_labels, const WideOptions& options);
  // The best norm power (of kNormPowers, when choose_power; else options.norm_power), share
  // rounds (of kShareRounds, when choose_rounds; else options.share_rounds) and contrast (of
  // kContrasts, when choose_contrast; else options.contrast) for `train`: a build from all but up
  // to 2,000 of its points (at most a tenth, spread evenly) per rounds and contrast tried scores
  // the held-out ones; the highest P@1 wins, then P@5, then fewer rounds, then no contrast, then
  // the larger power. Rounds are tried in order and stop after the first that wins nothing over
  // fewer. The contrast candidates of every rounds share the neighbours found on the first
  // rounds' sums (nearest_labels). Fewer than 100 points to hold out: power 1, no rounds and
  // no contrast where they were to be chosen. `neighbours`, when given, receives the nearest
  // labels the contrast candidates used (empty when none were tried), for from_centroids. `log`
  // gets a line when the neighbours are found and when each rounds' candidates are scored.
  static WideStartChoice choose_start(const data::Dataset& train, std::uint32_t num_features,
                                      std::uint32_t num_labels, const WideOptions& options,
                                      bool choose_power, bool choose_rounds,
                                      bool choose_contrast = false,
                                      LabelNeighbours* neighbours = nullptr,
                                      const SetupLog& log = {});
  // Stored arrays (a model file's), after checking them: offsets (num_features + 1, from 0,
  // non-decreasing, ending at the entry count), labels (< num_labels, strictly ascending within a
  // feature), finite weights. Throws glide::Error naming `what` and the first fault.
  static WideLayer from_arrays(std::uint32_t num_features, std::uint32_t num_labels,
                               std::vector<std::uint64_t> offsets,
                               AlignedArray<std::uint32_t> labels, AlignedArray<float> weights,
                               const std::string& what);

  // Labels [begin, end) alone, as labels 0 .. end - begin (a shard's), with their weights (no
  // optimizer state).
  WideLayer label_slice(std::uint32_t begin, std::uint32_t end) const;

  bool empty() const { return labels_.empty(); }
  std::uint64_t entries() const { return labels_.size(); }
  std::uint32_t num_features() const { return num_features_; }
  std::uint32_t num_labels() const { return num_labels_; }

  // x's scores over every label it reaches, into `out` (cleared first, sized as needed).
  void score(const data::SparseView& x, WideScores& out) const;
  // x's scores block of labels by block, as exact inference scores the output layer, without a
  // score per label: seek() sets a cursor per entry of x (x.size() of them) at the first label
  // >= j0 of its feature's list; add_block() adds x's scores of labels [j0, j0 + n) to
  // row[l - j0] and moves the cursors past them, so blocks follow in ascending order from the
  // one seeked, each starting where the last ended. Each label's score is summed in x's order
  // in `sum` (n floats of scratch) before it is added, as score() sums it: a label x reaches
  // gets the same bits as from score(), one it does not reach gets 0 added. Returns whether
  // any label of the block was reached. Its cost is a step per entry of x per block, plus the
  // entries: with many blocks, score() costs less (ExactPredictor chooses).
  void seek(const data::SparseView& x, std::uint32_t j0, std::uint64_t* cursors) const;
  bool add_block(const data::SparseView& x, std::uint32_t j0, std::uint32_t n,
                 std::uint64_t* cursors, float* row, float* sum) const;
  // The entries score(x) visits: the lengths of x's features' label lists.
  std::uint64_t entries_of(const data::SparseView& x) const;
  // Training, batch by batch, over ActivePairs (neuron = label, neuron-major slots):
  // adds each scored pair's wide score to its logit z[slot].
  // It notes each label's hits in `batch` for train_step.
  void add_scores(WideBatch& batch, const ActivePairs& pairs, float* z) const;
  // One Adagrad step from the loss gradient of each pair's logit, coef[slot] (d logit(l) /
  // d V[f, l] = x_f), over the hits add_scores noted for the same batch and pairs. Label by label,
  // so each entry is updated by one thread, and the result does not depend on the thread count.
  // Entries without gradient keep their sums.
  void train_step(const WideBatch& batch, const ActivePairs& pairs, const float* coef, float lr,
                  float eps);
  // What add_scores and train_step need: Adagrad's sums and a label-major copy of the entries
  // (their features, places, weights and sums: 16 bytes an entry, not saved). Cheap once built.
  // While training, the weights and sums live in the label-major copy, where a label's entries
  // are contiguous; every reader of the feature-major arrays (score, weights, optimizer_sums)
  // first copies them back once, and the mutable optimizer_sums() lets the next
  // prepare_training() take the feature-major arrays again.
  void prepare_training();
  // Copies the label-major weights and sums back and frees the copy (the end of a run); the next
  // prepare_training() builds it again.
  void end_training();

  // Adagrad's sums of squared gradients: empty until training needs them.
  void ensure_optimizer_state();
  bool has_optimizer_state() const { return !sums_.empty(); }

  // The stored arrays (feature-major CSR), for saving.
  const std::vector<std::uint64_t>& offsets() const { return offsets_; }
  std::span<const std::uint32_t> labels() const { return labels_.span(); }
  std::span<const float> weights() const {
    sync_feature_major();
    return weights_.span();
  }
  std::span<float> optimizer_sums() {
    sync_feature_major();
    label_major_current_ = false;
    return sums_.span();
  }
  std::span<const float> optimizer_sums() const {
    sync_feature_major();
    return sums_.span();
  }

 private:
  // Feature-major storage of per-label (feature, weight) lists (label l is per_label[l]).
  static WideLayer from_label_entries(
      std::vector<std::vector<std::pair<std::uint32_t, float>>> per_label,
      std::uint32_t num_features);

  std::uint32_t num_features_ = 0, num_labels_ = 0;
  std::vector<std::uint64_t> offsets_{0};
  // The large arrays are AlignedArrays: fresh pages, which the parallel loops filling them touch
  // first (a std::vector would zero them on one thread first).
  AlignedArray<std::uint32_t> labels_;
  AlignedArray<float> weights_;
  AlignedArray<float> sums_;
  // Label-major index: label l's entries are label_entries_[label_offsets_[l] ..
  // label_offsets_[l + 1]), each its feature and its position in that feature's list.
  struct LabelEntry {
    std::uint32_t feature, rank;
  };
  std::vector<std::uint64_t> label_offsets_;
  AlignedArray<LabelEntry> label_entries_;
  // The entries' weights and Adagrad sums in the same label-major order, current while
  // label_major_current_; train_step updates them alone and marks the feature-major ones stale.
  AlignedArray<float> label_weights_, label_sums_;
  bool label_major_current_ = false;
  // Copies the label-major weights and sums back where train_step left the feature-major ones
  // stale; once, under a lock, for concurrent readers (evaluation threads scoring).
  void sync_feature_major() const;
  // fn(e, at) for every entry, in parallel: its place e in the label-major arrays and at in the
  // feature-major ones.
  template <class Fn>
  void for_each_entry(Fn&& fn) const;
  struct StaleFlag {  // copyable: a copy of the layer takes the flag's value and a lock of its own
    std::atomic<bool> stale{false};
    std::mutex lock;
    StaleFlag() = default;
    StaleFlag(const StaleFlag& o) : stale(o.stale.load()) {}
    StaleFlag& operator=(const StaleFlag& o) {
      stale.store(o.stale.load());
      return *this;
    }
  };
  mutable StaleFlag feature_major_;
};

}  // namespace glide::engine
