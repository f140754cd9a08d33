// Random datasets for the engine's tests: `points` points, each filled by
// make_point(rng, feature_ids, values, labels) from one generator seeded by `seed`.
#pragma once
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "data/dataset.h"

namespace glide::engine::testing {

// Appends draw() results to `out` until it holds n distinct values.
template <class Draw>
void draw_distinct(std::vector<std::uint32_t>& out, std::size_t n, Draw draw) {
  while (out.size() < n) {
    const std::uint32_t v = draw();
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
}

template <class MakePoint>
data::Dataset random_dataset(std::uint32_t points, std::uint32_t features, std::uint32_t labels,
                             std::uint32_t seed, MakePoint make_point) {
  std::mt19937 rng(seed);
  data::Dataset d;
  d.num_features = features;
  d.num_labels = labels;
  std::vector<std::uint32_t> ids, ys;
  std::vector<float> vals;
  for (std::uint32_t i = 0; i < points; ++i) {
    ids.clear();
    ys.clear();
    vals.clear();
    make_point(rng, ids, vals, ys);
    d.add_point(ids, vals, ys);
  }
  return d;
}

}  // namespace glide::engine::testing
