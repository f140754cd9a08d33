// Learned caches in the .glide model file: one group of sections per cached hidden layer, so a
// model trained with caches (or saved by a server) starts warm. Layout (docs/model-format.md,
// "Learned caches"), for each cached hidden layer L:
//
//   cache/L/meta     json  {"cache_format": 1, "layer": L, "dim": D, "hot": H, "threshold": t,
//                           "examples": n, "version": v, "counts": C, "form": "centroid"}
//   cache/L/hot      u32   [H]        hot labels (distinct unless a centroid cache keeps several
//                                      rows per label); class c < H predicts hot[c]
//   cache/L/weight   f32   [H + 1, D] one row per class, the last one "other"
//   cache/L/bias     f32   [H + 1]
//   cache/L/labels   u32   [C]        labels with a decayed top-1 count (the trainer's popularity)
//   cache/L/counts   f32   [C]        their counts
//
// Readers reject a cache_format they do not know, and name the section and what is wrong when a
// cache section is damaged or does not fit the model.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cache/learned_cache.h"
#include "engine/config.h"
#include "engine/model_file.h"

namespace glide::cache {

// 2: meta has "confidence" (learned_cache.h, Confidence); 1 (still read): the best cosine. A ratio
// test cache is written as 2 so that a glide reading only 1 refuses it instead of reading its
// thresholds as cosines.
inline constexpr std::uint32_t kCacheFormat = 2;

// Caches by hidden layer.
using CacheStates = std::map<std::uint32_t, CacheState>;

// Keeps what it adds alive until the writer commits: make one, add(), then commit the writer.
class CacheSectionWriter {
 public:
  // Adds the sections of every cache in `states` to `w`.
  void add(engine::ModelFileWriter& w, const CacheStates& states);

 private:
  struct Owned {
    std::vector<float> weight, counts;
    std::vector<std::uint32_t> labels;
  };
  std::vector<Owned> owned_;
  CacheStates keep_;
};

// The caches stored in a model file (empty when it has none). Throws glide::Error
// "FILE: section 'cache/L/...': ..." for damaged or mismatched sections.
CacheStates read_caches(const engine::ModelFileReader& r, const engine::NetworkConfig& net);
CacheStates read_caches(const std::string& path, const engine::NetworkConfig& net);

}  // namespace glide::cache
