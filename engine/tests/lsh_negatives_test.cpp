// LSH negatives shared by the batch (network.lsh_negatives = "batch") against references: the
// shared set is the labels, the uniform draws and the candidates the most samples retrieved,
// counted by brute force over what sample mode gives each sample from the same tables; the
// choice repeats itself on any number of threads; a fresh network's sampler waits for its first
// refresh to build tables; and a network trained that way learns.
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "common/rng.h"
#include "engine/evaluator.h"
#include "engine/network.h"
#include "engine/output_sampler.h"
#include "engine/tests/reference_network.h"
#include "engine/tests/small_problem.h"
#include "engine/trainer.h"

using namespace glide;
using namespace glide::engine;

namespace {

// 2,000 output rows of width 16 in LSH tables small enough that a query's buckets hold at most
// 8 x 8 ids, under the 100 own candidates sample mode keeps (budget 200): each sample's
// candidates are then all the ids of its buckets, whatever order the tables are visited in.
struct Planted {
  static constexpr std::uint32_t kLabels = 2000, kDim = 16, kBatch = 48;
  Config config;
  std::unique_ptr<Network> net;
  Planted() {
    NetworkConfig& n = config.net;
    n.num_features = 10;
    n.num_labels = kLabels;
    n.hidden = {kDim};
    n.sparsity = 0.1;
    n.lsh.K = 2;
    n.lsh.L = 8;
    n.lsh.range_pow = 6;
    n.lsh.bucket_size = 8;
    n.seed = 3;
    net = std::make_unique<Network>(n);
  }
  std::unique_ptr<OutputSampler> sampler(LshNegatives mode, std::uint32_t query_every = 1,
                                         FirstTables first = FirstTables::kBuildNow) const {
    NetworkConfig n = config.net;
    n.lsh_negatives = mode;
    n.lsh_query_every = query_every;
    return make_lsh_sampler(n, config.train, net->output->rows_f32(), /*training=*/true, first);
  }
};

// A batch from 4 clusters of activations (samples of a cluster retrieve many of the same
// candidates), one label each.
struct PlantedBatch {
  std::vector<float> h;
  std::vector<std::uint32_t> ys;
  std::vector<std::span<const std::uint32_t>> labels;
  PlantedBatch(std::uint64_t seed) : h(Planted::kBatch * Planted::kDim), ys(Planted::kBatch) {
    Rng rng(seed);
    std::vector<float> centers(4 * Planted::kDim);
    for (float& c : centers) c = static_cast<float>(rng.uniform());
    for (std::uint32_t s = 0; s < Planted::kBatch; ++s) {
      for (std::uint32_t i = 0; i < Planted::kDim; ++i)
        h[s * Planted::kDim + i] =
            centers[(s % 4) * Planted::kDim + i] + 0.1f * static_cast<float>(rng.uniform());
      ys[s] = static_cast<std::uint32_t>(rng.below(Planted::kLabels));
    }
    for (const std::uint32_t& y : ys) labels.push_back({&y, 1});
  }
  BatchActivations acts() const { return {h.data(), Planted::kDim, Planted::kBatch}; }
};

std::vector<std::uint32_t> shared_of(const OutputSampler& s) {
  return {s.shared().begin(), s.shared().end()};
}

// Batch `index` through a batch-mode and a sample-mode sampler over the same tables: checks the
// batch-mode shared set against the counts of the sample-mode candidates of every
// query_every-th sample.
void check_against_sample_mode(OutputSampler& batch, OutputSampler& sample, std::uint64_t index,
                               const PlantedBatch& b, std::uint32_t query_every) {
  batch.begin_batch(index, b.labels, b.acts());
  sample.begin_batch(index, b.labels, b.acts());
  const std::vector<std::uint32_t> shared = shared_of(batch), drawn = shared_of(sample);
  const std::uint32_t budget = sampling_budget(Planted::kLabels, 0.1);
  std::set<std::uint32_t> distinct_labels(b.ys.begin(), b.ys.end());
  // Labels and uniform draws as sample mode draws them, then the LSH candidates.
  REQUIRE(shared.size() >= drawn.size());
  CHECK(std::equal(drawn.begin(), drawn.end(), shared.begin()));
  CHECK(drawn.size() == distinct_labels.size() + (budget - budget / 2));
  CHECK(shared.size() <= distinct_labels.size() + budget);
  CHECK(std::set<std::uint32_t>(shared.begin(), shared.end()).size() == shared.size());
  for (std::size_t k = distinct_labels.size(); k < shared.size(); ++k)
    CHECK(distinct_labels.count(shared[k]) == 0);

  std::vector<std::uint32_t> own;
  std::map<std::uint32_t, std::uint32_t> count;  // brute force: samples that retrieved j
  for (std::uint32_t s = 0; s < Planted::kBatch; ++s) {
    batch.select(b.acts().row(s), own);
    CHECK(own.empty());
    sample.select(b.acts().row(s), own);
    if (s % query_every == 0)
      for (std::uint32_t j : own) ++count[j];
  }
  const std::vector<std::uint32_t> lsh(shared.begin() + static_cast<std::ptrdiff_t>(drawn.size()),
                                       shared.end());
  REQUIRE(count.size() > budget / 2);  // not every candidate fits: the choice is tested
  CHECK(lsh.size() == budget / 2);
  std::uint32_t least_chosen = Planted::kBatch;
  for (std::uint32_t j : lsh) {
    REQUIRE(count.count(j) == 1);
    least_chosen = std::min(least_chosen, count[j]);
  }
  const std::set<std::uint32_t> chosen(lsh.begin(), lsh.end());
  std::uint32_t most_left = 0;
  for (auto [j, c] : count)
    if (!chosen.count(j)) most_left = std::max(most_left, c);
  CHECK(least_chosen >= most_left);
  if (query_every == 1) CHECK(least_chosen > 1);  // the clusters make some candidates common
  MESSAGE("batch " << index << ": " << count.size() << " distinct candidates, " << lsh.size()
                   << " shared, retrieved by " << least_chosen << "+ samples");
}

}  // namespace

TEST_CASE("batch mode shares the candidates the most samples retrieved, and no own neurons") {
  Planted p;
  // Every sample querying, and every third (the clusters are s % 4: all four still query).
  for (const std::uint32_t every : {1u, 3u}) {
    CAPTURE(every);
    auto batch = p.sampler(LshNegatives::kBatch, every);
    auto sample = p.sampler(LshNegatives::kSample);
    // Batch 1 after batch 0 on the same samplers: the counts start from zero again.
    check_against_sample_mode(*batch, *sample, 0, PlantedBatch(1), every);
    check_against_sample_mode(*batch, *sample, 1, PlantedBatch(2), every);
  }
}

TEST_CASE("batch mode chooses the same neurons on one thread and on two, run after run") {
  Planted p;
  const PlantedBatch b(5);
  std::vector<std::vector<std::uint32_t>> runs;
  for (const int threads : {1, 1, 2, 2}) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    auto sampler = p.sampler(LshNegatives::kBatch);
    for (std::uint64_t index : {7, 8}) {
      sampler->begin_batch(index, b.labels, b.acts());
      runs.push_back(shared_of(*sampler));
    }
  }
  CHECK(runs[0] != runs[1]);  // another batch index draws other negatives and breaks ties anew
  for (std::size_t r = 2; r < runs.size(); ++r) CHECK(runs[r] == runs[r % 2]);
}

TEST_CASE("batch mode: log-q corrects the labels and uniform draws, not the LSH candidates") {
  Planted p;
  p.config.train.sampled_correction = SampledCorrection::kLogQ;
  auto batch = p.sampler(LshNegatives::kBatch);
  auto sample = p.sampler(LshNegatives::kSample);
  const PlantedBatch b(3);
  batch->begin_batch(0, b.labels, b.acts());
  sample->begin_batch(0, b.labels, b.acts());
  const auto corrections = batch->shared_corrections();
  const auto drawn = sample->shared_corrections();
  REQUIRE(corrections.size() == batch->shared().size());
  REQUIRE(drawn.size() == sample->shared().size());
  REQUIRE(drawn.size() < corrections.size());
  for (std::size_t k = 0; k < drawn.size(); ++k) CHECK(corrections[k] == drawn[k]);
  for (std::size_t k = drawn.size(); k < corrections.size(); ++k) CHECK(corrections[k] == 0.0f);
  CHECK(*std::max_element(drawn.begin(), drawn.end()) > 0);  // the uniform draws' -log q
}

TEST_CASE(
    "a fresh network's sampler draws uniform negatives until its first refresh, then "
    "retrieves what tables built at once retrieve") {
  for (const LshNegatives mode : {LshNegatives::kBatch, LshNegatives::kSample}) {
    CAPTURE(static_cast<int>(mode));
    Planted p;
    p.config.train.rebuild_every = 3;
    p.config.train.sampled_correction = SampledCorrection::kLogQ;
    auto deferred = p.sampler(mode, 1, FirstTables::kAtFirstRefresh);
    auto at_once = p.sampler(mode);
    const PlantedBatch b(6);
    const std::set<std::uint32_t> labels(b.ys.begin(), b.ys.end());
    const std::uint32_t budget = sampling_budget(Planted::kLabels, 0.1);
    std::vector<std::uint32_t> own;
    for (std::uint64_t index = 0; index < 3; ++index) {
      deferred->begin_batch(index, b.labels, b.acts());
      const std::vector<std::uint32_t> shared = shared_of(*deferred);
      // The labels, then the whole budget in uniform draws, all corrected; no own neurons.
      CHECK(shared.size() == labels.size() + budget);
      CHECK(std::set<std::uint32_t>(shared.begin(), shared.end()).size() == shared.size());
      const auto corrections = deferred->shared_corrections();
      REQUIRE(corrections.size() == shared.size());
      for (std::size_t k = labels.size(); k < shared.size(); ++k) CHECK(corrections[k] > 0);
      for (std::uint32_t s = 0; s < Planted::kBatch; ++s) {
        deferred->select(b.acts().row(s), own);
        CHECK(own.empty());
      }
      at_once->begin_batch(index, b.labels, b.acts());
      CHECK(shared_of(*at_once) != shared);
      deferred->after_batch(p.net->output->rows_f32(), index);  // index 2 starts the build
    }
    // The first tables are built in the background over the same rows: once published, the
    // deferred sampler draws and retrieves exactly what the one built at once does.
    at_once->begin_batch(3, b.labels, b.acts());
    const std::vector<std::uint32_t> expected = shared_of(*at_once);
    bool same = false;
    for (int tries = 0; tries < 1000 && !same; ++tries) {
      deferred->begin_batch(3, b.labels, b.acts());
      same = shared_of(*deferred) == expected;
      if (!same) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(same);
    std::vector<std::uint32_t> expected_own;
    for (std::uint32_t s = 0; s < Planted::kBatch; ++s) {
      deferred->select(b.acts().row(s), own);
      at_once->select(b.acts().row(s), expected_own);
      CHECK(own == expected_own);
    }
  }
}

TEST_CASE("a network trained with batch-shared LSH negatives learns") {
  testing::SmallProblem f(4);
  Config c = f.config;
  c.net.lsh_negatives = LshNegatives::kBatch;
  Network net(c.net);
  // The exact loss of the first 200 test points, untrained and trained.
  testing::Batch held_out;
  for (std::size_t i = 0; i < 200; ++i) {
    const data::SparseView x = f.data.test.features(i);
    const auto ys = f.data.test.labels(i);
    held_out.add({x.ids.begin(), x.ids.end()}, {x.values.begin(), x.values.end()},
                 {ys.begin(), ys.end()});
  }
  held_out.finish();
  const double untrained = testing::reference_loss(net, held_out);
  Trainer trainer(net, c.train, make_training_sampler(c, net, false));
  fit(net, trainer, f.data.train, c.train, {});
  const double trained = testing::reference_loss(net, held_out);
  const EvalResult e = evaluate(net, f.data.test, EvalMode::kExact, nullptr);
  MESSAGE("batch-shared LSH negatives: loss " << untrained << " -> " << trained << ", exact P@1 "
                                              << e.precision[0]);
  CHECK(trained < 0.7 * untrained);
  CHECK(e.precision[0] >= 0.3);  // the floor of the per-sample LSH run (engine_e2e_test)
}
