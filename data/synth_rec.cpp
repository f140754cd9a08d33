#include "data/synth_rec.h"

#include <tbb/parallel_for.h>

#include <algorithm>

#include "common/error.h"
#include "common/rng.h"
#include "data/threads.h"

namespace glide::data {

namespace {
constexpr std::uint64_t kUserTag = 0x05E125;
}

void RecSynthConfig::check() const {
  auto bad = [](const std::string& what) { fail("synthetic recommendation data: " + what); };
  if (items == 0) bad("items must be positive");
  if (clusters == 0 || clusters > items) bad("clusters must be between 1 and the number of items");
  if (!(mean_history >= 2)) bad("mean history must be at least 2");
  if (!(zipf_exponent >= 0) || zipf_exponent > 5) bad("zipf exponent must be in [0, 5]");
  if (!(affinity >= 0 && affinity <= 1)) bad("affinity must be in [0, 1]");
  if (!(noise >= 0 && noise <= 1)) bad("noise must be in [0, 1]");
  if (window == 0 || horizon == 0 || stride == 0)
    bad("window, horizon and stride must be positive");
}

RecGenerator::RecGenerator(const RecSynthConfig& config)
    : config_((config.check(), config)),
      // Cluster c holds items c, c + clusters, c + 2 clusters, ...: the first of them are the
      // most popular overall too, since global popularity follows the id.
      cluster_size_((config.items + config.clusters - 1) / config.clusters),
      cluster_popularity_(config.clusters, config.zipf_exponent),
      in_cluster_(cluster_size_, config.zipf_exponent),
      global_(config.items, config.zipf_exponent) {}

std::uint32_t RecGenerator::cluster_item(std::uint32_t cluster, std::uint32_t rank) const {
  const std::uint64_t item = cluster + std::uint64_t{rank} * config_.clusters;
  // The last cluster row may be short: fold overflowing ranks back into the cluster.
  return static_cast<std::uint32_t>(item < config_.items ? item : cluster);
}

void RecGenerator::generate_user(std::uint64_t stream_seed, std::uint64_t user,
                                 Dataset& out) const {
  Rng rng(derive_seed(stream_seed, user));
  const std::uint32_t favourite[2] = {cluster_popularity_.sample(rng),
                                      cluster_popularity_.sample(rng)};
  const std::uint32_t length = std::max<std::uint32_t>(2, poisson(rng, config_.mean_history));
  std::vector<std::uint32_t> history(length);
  int current = 0;
  for (auto& item : history) {
    if (rng.uniform() < config_.noise) {
      item = global_.sample(rng);
      continue;
    }
    if (rng.uniform() >= config_.affinity) current = 1 - current;
    item = cluster_item(favourite[current], in_cluster_.sample(rng));
  }
  std::vector<std::pair<std::uint32_t, float>> feats;
  std::vector<std::uint32_t> labels;
  // Sample positions t (the first predicted item), from the end backwards so the most recent
  // behaviour is always a sample.
  for (std::int64_t t = std::int64_t{length} - config_.horizon; t >= 1; t -= config_.stride) {
    feats.clear();
    labels.clear();
    const std::uint32_t from =
        t > config_.window ? static_cast<std::uint32_t>(t) - config_.window : 0;
    for (std::uint32_t k = from; k < t; ++k) {
      const float recency = 1.0f / static_cast<float>(t - k);  // 1 for the latest item
      auto it = std::find_if(feats.begin(), feats.end(),
                             [&](const auto& f) { return f.first == history[k]; });
      if (it == feats.end()) {
        feats.emplace_back(history[k], recency);
      } else {
        it->second += recency;
      }
    }
    for (std::uint32_t k = static_cast<std::uint32_t>(t); k < t + config_.horizon; ++k)
      if (std::find(labels.begin(), labels.end(), history[k]) == labels.end())
        labels.push_back(history[k]);
    std::sort(feats.begin(), feats.end());
    std::sort(labels.begin(), labels.end());
    for (const auto& [id, v] : feats) {
      out.feature_ids.push_back(id);
      out.values.push_back(v);
    }
    out.row_offsets.push_back(out.feature_ids.size());
    out.label_ids.insert(out.label_ids.end(), labels.begin(), labels.end());
    out.label_offsets.push_back(out.label_ids.size());
  }
}

Dataset RecGenerator::generate(std::uint64_t first, std::uint64_t count, std::uint64_t stream,
                               int threads) const {
  const std::uint64_t stream_seed = derive_seed(derive_seed(config_.seed, kUserTag), stream);
  constexpr std::uint64_t kBlock = 256;
  std::vector<Dataset> parts((count + kBlock - 1) / kBlock);
  with_threads(threads, [&] {
    tbb::parallel_for(std::size_t{0}, parts.size(), [&](std::size_t b) {
      const std::uint64_t end = std::min(count, (b + 1) * kBlock);
      for (std::uint64_t u = b * kBlock; u < end; ++u)
        generate_user(stream_seed, first + u, parts[b]);
    });
  });
  Dataset out;
  for (auto& p : parts) {
    out.append(p);
    p = Dataset();
  }
  out.num_features = config_.items;
  out.num_labels = config_.items;
  return out;
}

Dataset synth_rec(const RecSynthConfig& config, int threads) {
  return RecGenerator(config).generate(0, config.users, 0, threads);
}

}  // namespace glide::data
