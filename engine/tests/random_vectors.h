// Random test vectors for the kernel tests (deterministic for a given Rng).
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "common/rng.h"
#include "data/dataset.h"

namespace glide::engine::testing {

// n floats uniform in [lo, hi).
inline std::vector<float> randoms(std::size_t n, Rng& rng, float lo = -1, float hi = 1) {
  std::vector<float> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniformf();
  return v;
}

// n sparse inputs of 1..max_nnz features below `features` with values uniform in [-scale, scale)
// (steps of scale / 500), and views of them.
struct RandomInputs {
  std::vector<std::vector<std::uint32_t>> ids;
  std::vector<std::vector<float>> values;
  std::vector<data::SparseView> views;
};
inline RandomInputs random_inputs(std::size_t n, std::uint64_t seed, std::uint32_t features,
                                  std::size_t max_nnz, float scale) {
  std::mt19937_64 rng(seed);
  RandomInputs in;
  in.ids.resize(n);
  in.values.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t q = 0, nnz = 1 + rng() % max_nnz; q < nnz; ++q) {
      in.ids[i].push_back(static_cast<std::uint32_t>(rng() % features));
      in.values[i].push_back(scale * (static_cast<float>(rng() % 1000) / 500.0f - 1.0f));
    }
  for (std::size_t i = 0; i < n; ++i) in.views.push_back({in.ids[i], in.values[i]});
  return in;
}

}  // namespace glide::engine::testing
