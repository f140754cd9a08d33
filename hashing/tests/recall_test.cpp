#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hashing/lsh_index.h"
#include "hashing/planted_layer.h"

using namespace glide;
using namespace glide::hashing;

// Recall of the true top-10 inner products within an active set of 0.5% of a 20k-neuron layer.
// A random 0.5% sample has expected recall 0.005.
TEST_CASE("sampled active sets recall the true top inner products far above chance") {
  const std::uint32_t neurons = 20000, dim = 128, queries = 40;
  const PlantedLayer layer = make_planted_layer(neurons, dim, queries, 10, 0.6f, 0.9f, 1);
  struct Case {
    HashKind kind;
    std::uint32_t K, range_pow;
    SampleStrategy strategy;
    double min_recall;
  };
  const Case cases[] = {
      {HashKind::kSimHash, 10, 16, SampleStrategy::kTopK, 0.6},
      {HashKind::kWta, 4, 16, SampleStrategy::kTopK, 0.6},
      {HashKind::kDwta, 4, 16, SampleStrategy::kTopK, 0.6},
      {HashKind::kDoph, 6, 16, SampleStrategy::kTopK, 0.4},  // dense rows binarized: weaker
      {HashKind::kDwta, 5, 16, SampleStrategy::kUnion, 0.45},
  };
  for (const Case& c : cases) {
    HashConfig hc;
    hc.kind = c.kind;
    hc.dim = dim;
    hc.K = c.K;
    hc.L = 50;
    hc.range_pow = c.range_pow;
    TableConfig tc;
    tc.bucket_capacity = 64;
    LshIndex index(hc, tc);
    index.build(neurons, layer.weights.data(), dim);
    ActiveSetSampler sampler(neurons, 1);
    SampleConfig sc;
    sc.strategy = c.strategy;
    sc.budget = neurons / 200;
    std::vector<std::uint32_t> out;
    double sum = 0;
    for (std::uint32_t q = 0; q < queries; ++q) {
      index.sample_dense(layer.query(q), sampler, sc, {}, out);
      REQUIRE(out.size() <= sc.budget);
      sum += recall(brute_force_top_k(layer, layer.query(q), 10), out);
    }
    const double mean = sum / queries;
    const std::string label = hc.to_string() + " " + sample_strategy_name(c.strategy);
    MESSAGE(label, ": recall@0.5% = ", mean);
    CHECK(mean >= c.min_recall);
  }
}
