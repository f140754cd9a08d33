// The wide layer's starting weights: each label's centroid of its training points, unscaled
// (engine/wide_layer.h scales them by the label's norm).
//
// With WideOptions::share_rounds > 0, each point's feature values are first split among its
// labels, in proportion to how likely each label's centroid (as a distribution over features)
// makes the feature, beside a background share (kBackgroundShare of the draws, the training set's
// feature distribution): rounds of EM over a mixture of the labels' feature distributions. A rare
// label seen beside frequent ones then keeps the features they do not explain, instead of their
// whole profiles (docs/training.md, "Shares").
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "engine/wide_layer.h"

namespace glide::engine {

struct LabelNeighbours;

// Each label's (feature, weight) entries.
using LabelEntries = std::vector<std::vector<std::pair<std::uint32_t, float>>>;

// The share of a point's feature draws that background words make.
inline constexpr double kBackgroundShare = 0.1;

// Every label's centroid over the points not marked in `held` (none when empty), pruned: the
// weights of at least options.min_weight times the label's largest, at most
// options.max_per_label of them. visit(r, entries) receives them after each round r <=
// options.share_rounds (every_round; the rounds stop where it returns false) or after the last
// alone. Rounds where share_rounds_obstacle finds one throw glide::Error naming it.
void label_sums_by_round(const data::Dataset& train, std::uint32_t num_features,
                         std::uint32_t num_labels, const WideOptions& options,
                         const std::vector<bool>& held, bool every_round,
                         const std::function<bool(std::uint32_t, LabelEntries&&)>& visit);
// The (label, feature) sums share rounds would hold at most: each point's nonzeros times its
// labels.
std::uint64_t share_entries(const data::Dataset& train);
// Why share rounds cannot run on `train`, empty when they can: more sums than
// options.max_share_entries, or a negative feature value (the shares split values as amounts).
std::string share_rounds_obstacle(const data::Dataset& train, const WideOptions& options);

// The centroids after options.share_rounds rounds.
LabelEntries label_sums(const data::Dataset& train, std::uint32_t num_features,
                        std::uint32_t num_labels, const WideOptions& options,
                        const std::vector<bool>& held);

// Subtracts from each label's entries `strength` x its norm x the mean unit centroid of its
// kContrastNeighbours nearest labels, on the label's own features, then prunes as label_sums
// does. Nearest: the largest dot products of the labels' kContrastQuery largest unit weights (among
// labels whose largest weights share a feature). Siblings that share most of their features
// (categories under one parent) then keep the features that tell them apart (docs/training.md,
// "Contrast").
// `known`: neighbours found on (most of) the same sums (choose_start's held-out build); labels
// with none there are searched here, the rest keep theirs.
void contrast_with_neighbours(LabelEntries& per_label, std::uint32_t num_features, float strength,
                              const WideOptions& options, const LabelNeighbours* known = nullptr);
inline constexpr std::size_t kContrastNeighbours = 10;
inline constexpr std::size_t kContrastQuery = 32;

// Its two steps, so that one search can serve several builds of similar sums (choose_start's
// share rounds, and the final build after it): each label's nearest labels, nearest first (count[l]
// of them, at ids[l * kContrastNeighbours ...]), and the subtracted entries given them. With
// `known` (one entry per label), only the labels it has no neighbours for are searched.
struct LabelNeighbours {
  std::vector<std::uint32_t> ids;
  std::vector<std::uint8_t> count;
};
LabelNeighbours nearest_labels(const LabelEntries& per_label, std::uint32_t num_features,
                               const LabelNeighbours* known = nullptr);
LabelEntries subtract_neighbours(const LabelEntries& per_label, const LabelNeighbours& neighbours,
                                 std::uint32_t num_features, float strength,
                                 const WideOptions& options);

// Each label's norm.
std::vector<double> norms_of(const LabelEntries& per_label);
// The labels with at least one entry, in id order: their rank in it names them where arrays read
// at random should hold only those (the neighbour search, the held-out scoring).
std::vector<std::uint32_t> labels_with_entries(const LabelEntries& per_label);
// The median of the labels' nonzero norms (1 when there are none).
double median_of(const std::vector<double>& norms);
// The factor taking a label's sum (norm `norm`) to its start: norm init_scale x (norm /
// median)^(1 - power).
double start_scale(double norm, double median, double power, double init_scale);

}  // namespace glide::engine
