// How far a synthetic XC dataset lets any model go: test points scored by the planted model that
// generated them (XcGenerator's label profiles and background words), which no learner sees.
//
// A label's score for a point is the log-likelihood ratio of the point's features under "the
// label contributed them" against "background words did":
//   score(l, x) = sum over x's features f of log(1 + (1 - noise) / mean_labels * p_l(f) /
//                                                (noise * background(f)))
// where p_l(f) is the probability that a draw from l's profile gives f. It ignores the other
// labels' share of the draws, the label prior and term frequencies, so it is a strong reference,
// not the Bayes optimum. Scored over labels seen in training it is what a model that knew each seen
// label's profile exactly would reach: the gap between a trained model and it is what better
// training can still win on that data; the gap to every label is the unseen labels' share.
#pragma once
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/synth_xc.h"

namespace glide::data {

class PlantedScorer {
 public:
  explicit PlantedScorer(const XcGenerator& generator, int threads = 0);

  // The k labels of highest score among those x reaches (`allowed` empty or allowed[l] != 0),
  // best first, ties by label id; fewer when x reaches fewer.
  std::vector<std::uint32_t> top(const SparseView& x, std::size_t k,
                                 std::span<const std::uint8_t> allowed = {}) const;
  // The score of label l for x, from l's profile alone (the brute-force reference of top()).
  double score(const SparseView& x, std::uint32_t l) const;

 private:
  // The planted log-likelihood ratio of feature f drawn from a profile where it has weight w.
  double evidence(std::uint32_t f, float w) const;

  const XcGenerator& generator_;
  // Inverted index of the profiles: feature f's (label, weight) pairs.
  std::vector<std::uint64_t> offsets_;
  std::vector<std::pair<std::uint32_t, float>> entries_;
};

struct PlantedCeiling {
  double p_at_1_all = 0, p_at_5_all = 0;    // over every label
  double p_at_1_seen = 0, p_at_5_seen = 0;  // over labels with a training point
  std::uint32_t seen_labels = 0;
};

// The planted scorer's precision on `test`, over every label and over `train`'s labels.
PlantedCeiling planted_ceiling(const XcGenerator& generator, const Dataset& train,
                               const Dataset& test, int threads = 0);

}  // namespace glide::data
