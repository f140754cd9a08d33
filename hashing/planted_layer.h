// Synthetic layers with planted near neighbours, to measure retrieval quality against brute
// force (tests and `glide bench hash`): random unit weight rows, and for each query a few rows
// replaced by noisy copies of it at decreasing similarity.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace glide::hashing {

struct PlantedLayer {
  std::uint32_t num_neurons = 0, dim = 0, num_queries = 0;
  std::vector<float> weights;  // num_neurons x dim, unit rows
  std::vector<float> queries;  // num_queries x dim, unit rows
  const float* row(std::size_t i) const { return weights.data() + i * dim; }
  const float* query(std::size_t q) const { return queries.data() + q * dim; }
};

// planted_per_query rows per query get cosine similarity spread over [min_cosine, max_cosine]
// with the query (each row is planted for at most one query).
PlantedLayer make_planted_layer(std::uint32_t num_neurons, std::uint32_t dim,
                                std::uint32_t num_queries, std::uint32_t planted_per_query,
                                float min_cosine, float max_cosine, std::uint64_t seed);

// The k rows with the largest inner product with q (ties: smaller id), by brute force.
std::vector<std::uint32_t> brute_force_top_k(const PlantedLayer& layer, const float* q,
                                             std::uint32_t k);

// Fraction of `truth` found in `active`.
double recall(std::span<const std::uint32_t> truth, std::span<const std::uint32_t> active);

}  // namespace glide::hashing
