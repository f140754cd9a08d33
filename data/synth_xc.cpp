#include "data/synth_xc.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "data/threads.h"

namespace glide::data {

namespace {

// Stream tags keep the parts of the model independent of each other.
constexpr std::uint64_t kProfileTag = 0x9E0F11E5;
constexpr std::uint64_t kLabelIdTag = 0x1ABE1;
constexpr std::uint64_t kPointTag = 0x90147;
constexpr std::uint64_t kFamilyTag = 0xFA3117;
constexpr std::uint64_t kTypeTag = 0x7E9E5;
constexpr std::uint64_t kTypeLabelsTag = 0x7E9E1A;
// How unevenly item types are common (types ~ rank^-exponent).
constexpr double kTypeZipfExponent = 0.8;

// Inverse-document-frequency stand-in: background words have low ids and are common, so their
// weight is low; rare (high-id) features weigh more.
float idf(std::uint32_t feature) {
  return static_cast<float>(std::log(2.0 + feature));
}

}  // namespace

void XcSynthConfig::check() const {
  auto bad = [](const std::string& what) { fail("synthetic data: " + what); };
  if (features == 0) bad("features must be positive");
  if (labels == 0) bad("labels must be positive");
  if (!(mean_features >= 1) || mean_features > features)
    bad("mean features per point must be between 1 and the number of features");
  if (!(mean_labels >= 1) || mean_labels > labels)
    bad("mean labels per point must be between 1 and the number of labels");
  if (max_labels && max_labels < mean_labels) bad("max labels must be at least the mean");
  if (!(zipf_exponent >= 0) || zipf_exponent > 5) bad("zipf exponent must be in [0, 5]");
  if (!(noise >= 0 && noise <= 1)) bad("noise must be in [0, 1]");
  if (profile_size > 4096) bad("profile size must be at most 4096");
  if (family_size == 0) bad("family size must be at least 1");
  if (!(family_share >= 0 && family_share < 1)) bad("family share must be in [0, 1)");
  if (types > 0 && family_size > 1) bad("item types and label families do not combine");
}

XcSynthConfig xc_preset(const std::string& name) {
  XcSynthConfig c;
  if (name == "default") return c;
  if (name == "amazon670k") {
    c.points = 102400;
    c.features = 135909;
    c.labels = 670091;
    c.mean_features = 76;
    c.mean_labels = 4;
    // Flat enough that the most frequent label is on about 1% of points, as in the real data.
    c.zipf_exponent = 0.6;
    return c;
  }
  if (name == "families") {
    // The default shape with labels in families of 10 that draw 80% of their features from a
    // shared profile: telling siblings apart is the task, and label centroids are not enough.
    c.family_size = 10;
    c.family_share = 0.8;
    return c;
  }
  if (name == "facets") {
    // The default shape with points of 2,000 item types: labels are facets that several types
    // share, where label centroids mix the profiles of every type that has the label.
    c.types = 2000;
    return c;
  }
  if (name == "tiny") {
    c.points = 2000;
    c.features = 2000;
    c.labels = 300;
    c.mean_features = 20;
    c.mean_labels = 2;
    return c;
  }
  fail("unknown preset '" + name + "' (expected default, amazon670k, families, facets or tiny)");
}

std::vector<std::string> xc_preset_names() {
  return {"default", "amazon670k", "families", "facets", "tiny"};
}

XcGenerator::XcGenerator(const XcSynthConfig& config)
    : config_((config.check(), config)),
      profile_size_(
          config.profile_size
              ? config.profile_size
              : static_cast<std::uint32_t>(std::clamp(
                    std::round(2 * config.mean_features / config.mean_labels), 8.0, 64.0))),
      max_labels_(config.max_labels
                      ? config.max_labels
                      : std::max<std::uint32_t>(
                            1, static_cast<std::uint32_t>(std::ceil(3 * config.mean_labels)))),
      label_ranks_(config.labels, config.zipf_exponent),
      background_(config.features, 1.0),
      type_ranks_(std::max<std::uint32_t>(config.types, 1), kTypeZipfExponent),
      label_ids_(config.labels, derive_seed(config.seed, kLabelIdTag)) {
  max_labels_ = std::min(max_labels_, config.labels);
}

namespace {

// profile_size features drawn from `features` with the stream `seed`, weighted as generate_point
// draws them (index floor(P u^2)), the weights scaled by `share`; appended to p.
void append_profile(std::uint64_t seed, std::uint32_t profile_size, std::uint32_t features,
                    double share, LabelProfile& p) {
  Rng rng(seed);
  for (std::uint32_t j = 0; j < profile_size; ++j) {
    p.features.push_back(rng.below(features));
    p.weights.push_back(static_cast<float>(share * (std::sqrt(j + 1.0) - std::sqrt(double(j))) /
                                           std::sqrt(double(profile_size))));
  }
}

}  // namespace

LabelProfile XcGenerator::profile(std::uint32_t label) const {
  LabelProfile p;
  const bool families = config_.family_size > 1;
  if (families) {
    append_profile(derive_seed(config_.seed ^ kFamilyTag, label / config_.family_size),
                   profile_size_, config_.features, config_.family_share, p);
    p.family = profile_size_;
  }
  append_profile(derive_seed(config_.seed ^ kProfileTag, label), profile_size_, config_.features,
                 families ? 1 - config_.family_share : 1.0, p);
  return p;
}

LabelProfile XcGenerator::type_profile(std::uint32_t type) const {
  LabelProfile p;
  append_profile(derive_seed(config_.seed ^ kTypeTag, type), profile_size_, config_.features, 1.0,
                 p);
  return p;
}

std::vector<std::uint32_t> XcGenerator::type_labels(std::uint32_t type) const {
  Rng rng(derive_seed(config_.seed ^ kTypeLabelsTag, type));
  std::vector<std::uint32_t> labels;
  draw_labels(rng, labels);
  std::sort(labels.begin(), labels.end());
  return labels;
}

void XcGenerator::draw_labels(Rng& rng, std::vector<std::uint32_t>& labels) const {
  const std::uint32_t want_labels =
      std::min(max_labels_, 1 + poisson(rng, config_.mean_labels - 1));
  labels.reserve(want_labels);
  for (std::uint32_t tries = 0; labels.size() < want_labels && tries < 16 * want_labels; ++tries) {
    const std::uint32_t label = label_ids_(label_ranks_.sample(rng));
    if (std::find(labels.begin(), labels.end(), label) == labels.end()) labels.push_back(label);
  }
}

void XcGenerator::generate_point(
    std::uint64_t stream_seed, std::uint64_t index, Dataset& out,
    std::vector<std::pair<std::uint32_t, std::uint32_t>>& counts) const {
  Rng rng(derive_seed(stream_seed, index));
  std::vector<std::uint32_t> labels;
  std::vector<LabelProfile> profiles;
  if (config_.types > 0) {
    const std::uint32_t type = type_ranks_.sample(rng);
    labels = type_labels(type);
    profiles.push_back(type_profile(type));
  } else {
    draw_labels(rng, labels);
    profiles.reserve(labels.size());
    for (auto l : labels) profiles.push_back(profile(l));
  }

  // Features: draw until the point has its number of distinct features (bounded draws, since
  // small profiles cannot always supply them).
  const std::uint32_t want =
      std::clamp<std::uint32_t>(poisson(rng, config_.mean_features), 1, config_.features);
  counts.clear();
  const std::uint32_t max_draws = 8 * want + 16;
  for (std::uint32_t d = 0; d < max_draws && counts.size() < want; ++d) {
    std::uint32_t f;
    if (rng.uniform() < config_.noise) {
      f = background_.sample(rng);
    } else {
      const LabelProfile& p = profiles[rng.below(static_cast<std::uint32_t>(profiles.size()))];
      const std::uint32_t first = p.family && rng.uniform() < config_.family_share ? 0 : p.family;
      const double u = rng.uniform();
      f = p.features[first + static_cast<std::uint32_t>(profile_size_ * u * u)];
    }
    auto it =
        std::find_if(counts.begin(), counts.end(), [f](const auto& c) { return c.first == f; });
    if (it == counts.end()) {
      counts.emplace_back(f, 1);
    } else {
      ++it->second;
    }
  }
  std::sort(counts.begin(), counts.end());
  std::sort(labels.begin(), labels.end());
  double norm = 0;
  const std::size_t base = out.values.size();
  for (const auto& [f, tf] : counts) {
    const float v = (1.0f + std::log(static_cast<float>(tf))) * idf(f);
    out.feature_ids.push_back(f);
    out.values.push_back(v);
    norm += double(v) * v;
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(norm));
  for (std::size_t k = base; k < out.values.size(); ++k) out.values[k] *= scale;
  out.row_offsets.push_back(out.feature_ids.size());
  out.label_ids.insert(out.label_ids.end(), labels.begin(), labels.end());
  out.label_offsets.push_back(out.label_ids.size());
}

Dataset XcGenerator::generate(std::uint64_t first, std::uint64_t count, std::uint64_t stream,
                              int threads) const {
  const std::uint64_t stream_seed = derive_seed(derive_seed(config_.seed, kPointTag), stream);
  constexpr std::uint64_t kBlock = 512;
  const std::uint64_t blocks = (count + kBlock - 1) / kBlock;
  std::vector<Dataset> parts(blocks);
  with_threads(threads, [&] {
    tbb::parallel_for(std::uint64_t{0}, blocks, [&](std::uint64_t b) {
      Dataset& part = parts[b];
      std::vector<std::pair<std::uint32_t, std::uint32_t>> counts;
      const std::uint64_t end = std::min(count, (b + 1) * kBlock);
      for (std::uint64_t i = b * kBlock; i < end; ++i)
        generate_point(stream_seed, first + i, part, counts);
    });
  });
  Dataset out;
  out.num_features = config_.features;
  out.num_labels = config_.labels;
  std::uint64_t nnz = 0, nl = 0;
  for (const auto& p : parts) {
    nnz += p.feature_ids.size();
    nl += p.label_ids.size();
  }
  out.feature_ids.reserve(nnz);
  out.values.reserve(nnz);
  out.label_ids.reserve(nl);
  out.row_offsets.reserve(count + 1);
  out.label_offsets.reserve(count + 1);
  for (auto& p : parts) {
    out.append(p);
    p = Dataset();
  }
  out.num_features = config_.features;
  out.num_labels = config_.labels;
  return out;
}

Dataset synth_xc(const XcSynthConfig& config, int threads) {
  return XcGenerator(config).train(threads);
}

TrainTest synth_xc_split(const XcSynthConfig& config, std::uint64_t test_points, int threads) {
  const XcGenerator gen(config);
  return {gen.train(threads), gen.test(test_points, threads)};
}

}  // namespace glide::data
