// The exact predictor (rows scored in blocks, a block offered to the top-k only when its maximum
// reaches the k-th best, the block normaliser from the score kernels) against a reference over the
// same scores: every label scored in one score_block call, ranked by score then label id, softmax
// in double. Over label counts that are not multiples of the block (1024 rows) or of 16, k from 1
// to past the label count, batches below and above an AMX tile's 16 samples and the 64 from which
// fp32 and bf16 rows are scored as one matrix product, rows that tie, every storage of the output
// rows and every CPU level this machine supports.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/cpu.h"
#include "engine/output_weights.h"
#include "engine/predictor.h"
#include "engine/tests/output_storage.h"
#include "engine/tests/random_vectors.h"
#include "engine/top_k.h"

namespace glide::engine {
// Named: a unity build puts several test files in one unit.
namespace exact_predictor_test {
namespace {

constexpr std::uint32_t kFeatures = 300;

// Rows that tie: label `copy_of[j]` has row and bias equal to label j's for these pairs, and the
// tied group {3, 1030, last} gets a bias that puts it on top of most inputs.
std::unique_ptr<Network> network_with_ties(std::uint32_t labels, std::uint64_t seed) {
  NetworkConfig c;
  c.num_features = kFeatures;
  c.num_labels = labels;
  c.hidden = {40};  // not a multiple of 64: the int8 kernels' k tail too
  c.seed = seed;
  auto net = std::make_unique<Network>(c);
  ParamMatrix& W = testing::f32_rows(*net);
  auto& bias = net->output_bias.w;
  std::mt19937 g(static_cast<std::uint32_t>(seed));
  for (float& b : bias) b = static_cast<float>(g() % 2000) / 1000.0f - 1.0f;
  auto copy_row = [&](std::uint32_t from, std::uint32_t to) {
    if (from >= labels || to >= labels || from == to) return;
    std::copy(W.row(from), W.row(from) + W.cols, W.row(to));
    bias[to] = bias[from];
  };
  if (labels > 3) bias[3] = 4.0f;
  for (std::uint32_t to : {1030u, labels - 1}) copy_row(3, to);
  for (std::uint32_t j = 10; j + 17 < labels; j += 97) copy_row(j, j + 17);
  return net;
}

using Inputs = testing::RandomInputs;

Inputs random_inputs(std::size_t n, std::uint64_t seed) {
  return testing::random_inputs(n, seed, kFeatures, 20, 2.0f);
}

struct Ranked {
  std::vector<std::uint32_t> labels;  // every label, best first, ties by label id
  std::vector<double> probability;    // softmax in double, by label
};

// The reference: every label's score from one score_block call over all rows.
std::vector<Ranked> reference(const Network& net, std::span<const data::SparseView> inputs) {
  HiddenActivations acts;
  net.forward_hidden(inputs, acts, kernels());
  const std::size_t B = inputs.size(), N = net.num_labels(), last = acts.layers.size() - 1;
  ScorerBatch batch;
  net.output->prepare(acts.layers[last].data(), acts.strides[last], B, net.output_bias.w.data(),
                      batch);
  std::vector<float> z(B * N);
  net.output->score_block(batch, 0, static_cast<std::uint32_t>(N), z.data(), N);
  std::vector<Ranked> out(B);
  for (std::size_t s = 0; s < B; ++s) {
    const float* row = z.data() + s * N;
    Ranked& r = out[s];
    r.labels.resize(N);
    for (std::uint32_t j = 0; j < N; ++j) r.labels[j] = j;
    std::sort(r.labels.begin(), r.labels.end(), [&](std::uint32_t a, std::uint32_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    const double mx = row[r.labels[0]];
    double sum = 0;
    for (std::size_t j = 0; j < N; ++j) sum += std::exp(row[j] - mx);
    for (std::size_t j = 0; j < N; ++j) r.probability.push_back(std::exp(row[j] - mx) / sum);
  }
  return out;
}

struct LevelGuard {
  Isa saved = active_isa();
  ~LevelGuard() { set_active_isa(saved); }
};

TEST_CASE("the exact predictor equals a one-pass reference: storages, levels, k, ties, shapes") {
  LevelGuard guard;
  std::size_t tied_pairs_seen = 0;
  for (const std::uint32_t labels : {1u, 13u, 1000u, 1043u, 2100u}) {
    const std::unique_ptr<Network> f32 = network_with_ties(labels, 40 + labels);
    std::vector<std::pair<std::string, std::shared_ptr<const Network>>> storages;
    storages.emplace_back("fp32", std::make_shared<const Network>(*f32));
    auto bf16 = std::make_shared<Network>(*f32);
    output_to_bf16(*bf16, /*optimizer=*/false);
    storages.emplace_back("bf16", bf16);
    auto int8 = std::make_shared<Network>(*f32);
    quantize_output(*int8, quant::Granularity::kRow);
    storages.emplace_back("int8", int8);
    for (const auto& [storage, net] : storages) {
      for (const std::size_t batch : {1u, 5u, 19u, 70u}) {
        const Inputs in = random_inputs(batch, labels * 7 + batch);
        for (const Isa isa : kAllIsas) {
          if (!isa_supported(isa)) continue;
          REQUIRE(set_active_isa(isa));
          const std::vector<Ranked> want = reference(*net, in.views);
          const ExactPredictor predictor(net);
          for (const std::uint32_t k : {1u, 5u, labels, labels + 3}) {
            CAPTURE(labels);
            CAPTURE(storage);
            CAPTURE(batch);
            CAPTURE(isa_name(isa));
            CAPTURE(k);
            std::vector<Prediction> got;
            predictor.predict(in.views, k, got);
            REQUIRE(got.size() == batch);
            const std::size_t kk = std::min(k, labels);
            for (std::size_t s = 0; s < batch; ++s) {
              CAPTURE(s);
              REQUIRE(got[s].labels.size() == kk);
              REQUIRE(got[s].scores.size() == kk);
              CHECK(got[s].scored == labels);
              for (std::size_t r = 0; r < kk; ++r) {
                const std::uint32_t l = want[s].labels[r];
                CHECK(got[s].labels[r] == l);
                CHECK(got[s].scores[r] ==
                      doctest::Approx(want[s].probability[l]).epsilon(2e-5).scale(1e-30));
                if (r > 0 && want[s].probability[l] == want[s].probability[want[s].labels[r - 1]])
                  ++tied_pairs_seen;
              }
            }
          }
        }
      }
    }
  }
  CHECK(tied_pairs_seen > 100);  // the ties were there to be broken by label id
}

TEST_CASE("TopK over blocks in any order, with ties, keeps the k best by score then label id") {
  LevelGuard guard;
  std::mt19937 g(5);
  for (const Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    REQUIRE(set_active_isa(isa));
    for (const std::uint32_t n : {1u, 7u, 100u, 333u}) {
      // Scores from a few values: ties everywhere, across blocks too.
      std::vector<float> z(n);
      for (float& v : z) v = static_cast<float>(g() % 6);
      std::vector<std::uint32_t> order(n);
      for (std::uint32_t j = 0; j < n; ++j) order[j] = j;
      std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        return z[a] > z[b] || (z[a] == z[b] && a < b);
      });
      for (const std::size_t k : {1u, 3u, n, n + 2u}) {
        for (const std::uint32_t block : {1u, 16u, 17u, 64u}) {
          CAPTURE(isa_name(isa));
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(block);
          // Blocks offered last to first, so equal scores with lower ids come later.
          TopK t;
          const std::uint32_t blocks = (n + block - 1) / block;
          for (std::uint32_t b = blocks; b-- > 0;) {
            const std::uint32_t j0 = b * block, m = std::min(block, n - j0);
            t.offer_block(z.data() + j0, m, j0, k,
                          *std::max_element(z.begin() + j0, z.begin() + j0 + m));
          }
          REQUIRE(t.best.size() == std::min<std::size_t>(k, n));
          for (std::size_t r = 0; r < t.best.size(); ++r) {
            CHECK(t.best[r].second == order[r]);
            CHECK(t.best[r].first == z[order[r]]);
          }
          // The same labels as a candidate list in reverse order, in chunks of `block`.
          std::vector<std::uint32_t> labels(n);
          std::vector<float> scores(n);
          for (std::uint32_t q = 0; q < n; ++q) labels[q] = n - 1 - q, scores[q] = z[n - 1 - q];
          TopK c;
          for (std::uint32_t q0 = 0; q0 < n; q0 += block)
            c.offer_labels(scores.data() + q0, labels.data() + q0, std::min(block, n - q0), k);
          CHECK(c.best == t.best);
        }
      }
    }
  }
}

}  // namespace
}  // namespace exact_predictor_test
}  // namespace glide::engine
