#include "hashing/planted_layer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "common/rng.h"

namespace glide::hashing {

namespace {
void normalize(float* v, std::uint32_t dim) {
  double norm = 0;
  for (std::uint32_t i = 0; i < dim; ++i) norm += double{v[i]} * v[i];
  const float scale = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
  for (std::uint32_t i = 0; i < dim; ++i) v[i] *= scale;
}
}  // namespace

PlantedLayer make_planted_layer(std::uint32_t num_neurons, std::uint32_t dim,
                                std::uint32_t num_queries, std::uint32_t planted_per_query,
                                float min_cosine, float max_cosine, std::uint64_t seed) {
  if (std::uint64_t{num_queries} * planted_per_query > num_neurons)
    fail("planted layer", "more planted rows than neurons");
  PlantedLayer layer;
  layer.num_neurons = num_neurons;
  layer.dim = dim;
  layer.num_queries = num_queries;
  layer.weights.resize(std::size_t{num_neurons} * dim);
  layer.queries.resize(std::size_t{num_queries} * dim);
  Rng rng(seed);
  for (auto& w : layer.weights) w = static_cast<float>(rng.normal());
  for (std::uint32_t i = 0; i < num_neurons; ++i)
    normalize(layer.weights.data() + std::size_t{i} * dim, dim);
  // Distinct rows to plant into, in random order.
  std::vector<std::uint32_t> rows(num_neurons);
  std::iota(rows.begin(), rows.end(), 0u);
  for (std::uint32_t i = num_neurons - 1; i > 0; --i) std::swap(rows[i], rows[rng.below(i + 1)]);
  std::vector<float> noise(dim);
  for (std::uint32_t q = 0; q < num_queries; ++q) {
    float* query = layer.queries.data() + std::size_t{q} * dim;
    for (std::uint32_t i = 0; i < dim; ++i) query[i] = static_cast<float>(rng.normal());
    normalize(query, dim);
    for (std::uint32_t p = 0; p < planted_per_query; ++p) {
      const float t =
          planted_per_query > 1 ? static_cast<float>(p) / (planted_per_query - 1) : 0.0f;
      const float cosine = max_cosine + (min_cosine - max_cosine) * t;
      // A unit noise direction orthogonal to the query, mixed in at angle acos(cosine).
      for (std::uint32_t i = 0; i < dim; ++i) noise[i] = static_cast<float>(rng.normal());
      float dot = 0;
      for (std::uint32_t i = 0; i < dim; ++i) dot += noise[i] * query[i];
      for (std::uint32_t i = 0; i < dim; ++i) noise[i] -= dot * query[i];
      normalize(noise.data(), dim);
      const float sine = std::sqrt(std::max(0.0f, 1.0f - cosine * cosine));
      float* row = layer.weights.data() + std::size_t{rows[q * planted_per_query + p]} * dim;
      for (std::uint32_t i = 0; i < dim; ++i) row[i] = cosine * query[i] + sine * noise[i];
    }
  }
  return layer;
}

std::vector<std::uint32_t> brute_force_top_k(const PlantedLayer& layer, const float* q,
                                             std::uint32_t k) {
  std::vector<std::pair<float, std::uint32_t>> scored(layer.num_neurons);
  for (std::uint32_t i = 0; i < layer.num_neurons; ++i) {
    const float* w = layer.row(i);
    float dot = 0;
    for (std::uint32_t d = 0; d < layer.dim; ++d) dot += w[d] * q[d];
    scored[i] = {-dot, i};
  }
  k = std::min(k, layer.num_neurons);
  std::partial_sort(scored.begin(), scored.begin() + k, scored.end());
  std::vector<std::uint32_t> top(k);
  for (std::uint32_t i = 0; i < k; ++i) top[i] = scored[i].second;
  return top;
}

double recall(std::span<const std::uint32_t> truth, std::span<const std::uint32_t> active) {
  if (truth.empty()) return 1.0;
  std::size_t found = 0;
  for (std::uint32_t t : truth) found += std::find(active.begin(), active.end(), t) != active.end();
  return static_cast<double>(found) / truth.size();
}

}  // namespace glide::hashing
