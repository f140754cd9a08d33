// Synthetic extreme classification data with planted, learnable structure.
//
// The planted model: label frequencies follow Zipf's law (label ids scrambled so frequency does
// not follow the id); each label has a sparse feature profile (profile_size features with
// decreasing weights). A point draws 1..max_labels distinct labels, then draws features until it
// has about mean_features distinct ones: with probability `noise` a background word (Zipf over
// feature ids, so low ids are common words), otherwise a feature from one of its labels' profiles.
// Values are tf-idf-like ((1 + ln tf) * idf, idf growing with the feature id) and each point is
// L2-normalised, as XC repository features are.
//
// Label families (family_size > 1): labels family_size * k .. family_size * (k + 1) - 1 share a
// family profile, from which family_share of a label's draws come; the rest come from its own.
// Siblings then differ only by their own features, as categories under one parent do, and a
// model must learn which features tell them apart.
//
// Item types (types > 0): points are items of `types` kinds (Zipf popularity), each kind with its
// own feature profile and a fixed set of labels drawn as above, so a point's labels are its
// kind's and its features come from its kind's profile alone. A label is then a facet shared by
// several kinds (debtags' role::program, implemented-in::c), not a topic with features of its
// own: its points' centroid mixes the profiles of every kind that has it, weighted by how common
// the kind is. Labels have no profiles here (no --ceiling).
//
// Everything is a function of (config, seed, stream, point index): a point is generated from its
// own seed, so the output never depends on the thread count, and train (stream 0) and test
// (stream 1) points come from the same planted model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/rng.h"
#include "data/dataset.h"
#include "data/zipf.h"

namespace glide::data {

struct XcSynthConfig {
  std::uint64_t points = 50000;  // training points (XcGenerator::train)
  std::uint32_t features = 20000;
  std::uint32_t labels = 10000;
  double mean_features = 40;       // distinct features per point, on average
  double mean_labels = 3;          // labels per point, on average (at least 1)
  std::uint32_t max_labels = 0;    // labels per point at most; 0: 3 x mean_labels
  double zipf_exponent = 0.8;      // label frequency ~ rank^-exponent
  double noise = 0.1;              // fraction of feature draws that are background words
  std::uint32_t profile_size = 0;  // features per label profile; 0: from the means
  std::uint32_t family_size = 1;   // labels sharing a family profile (1: no families)
  double family_share = 0.5;       // fraction of a label's draws from its family's profile
  std::uint32_t types = 0;         // item types whose labels and profile a point takes (0: none)
  std::uint64_t seed = 1;

  // Throws glide::Error naming the first impossible setting.
  void check() const;
};

// Preset shapes: "default" (trains in about a minute on 2 cores), "families" (default, with labels
// in families of 10 sharing 80% of their profiles), "facets" (default, with points of 2,000 item
// types whose labels they take), "amazon670k" (the shape of Amazon-670K), "tiny" (tests). Throws
// glide::Error for an unknown name.
XcSynthConfig xc_preset(const std::string& name);
std::vector<std::string> xc_preset_names();

// A label's planted feature profile: features[j] is drawn with probability weights[j]. With
// families, the first `family` entries are the family's profile (weights scaled by
// family_share), the rest the label's own.
struct LabelProfile {
  std::vector<std::uint32_t> features;
  std::vector<float> weights;
  std::uint32_t family = 0;
};

enum : std::uint64_t { kTrainStream = 0, kTestStream = 1 };

class XcGenerator {
 public:
  explicit XcGenerator(const XcSynthConfig& config);

  // Points [first, first + count) of `stream`, generated on `threads` threads (0: every core).
  Dataset generate(std::uint64_t first, std::uint64_t count, std::uint64_t stream = kTrainStream,
                   int threads = 0) const;
  // config.points training points.
  Dataset train(int threads = 0) const {
    return generate(0, config_.points, kTrainStream, threads);
  }
  // `count` test points: same planted model, independent draws.
  Dataset test(std::uint64_t count, int threads = 0) const {
    return generate(0, count, kTestStream, threads);
  }

  LabelProfile profile(std::uint32_t label) const;
  // With types: item type t's feature profile and its labels (sorted).
  LabelProfile type_profile(std::uint32_t type) const;
  std::vector<std::uint32_t> type_labels(std::uint32_t type) const;
  // The label id of frequency rank `rank` (0: the most frequent).
  std::uint32_t label_of_rank(std::uint32_t rank) const { return label_ids_(rank); }
  const XcSynthConfig& config() const { return config_; }
  // The probability that a background draw gives feature f.
  double background_probability(std::uint32_t f) const { return background_.probability(f); }
  std::uint32_t profile_size() const { return profile_size_; }

 private:
  // A point's (or a type's) labels: 1 + Poisson(mean - 1), distinct, by Zipf rank.
  void draw_labels(Rng& rng, std::vector<std::uint32_t>& labels) const;
  void generate_point(std::uint64_t stream_seed, std::uint64_t index, Dataset& out,
                      std::vector<std::pair<std::uint32_t, std::uint32_t>>& counts) const;

  XcSynthConfig config_;
  std::uint32_t profile_size_, max_labels_;
  ZipfSampler label_ranks_, background_, type_ranks_;
  Scramble label_ids_;
};

// Shorthands: the training set, or training and test sets from one planted model.
Dataset synth_xc(const XcSynthConfig& config, int threads = 0);
struct TrainTest {
  Dataset train, test;
};
TrainTest synth_xc_split(const XcSynthConfig& config, std::uint64_t test_points, int threads = 0);

}  // namespace glide::data
