// The losses (engine/loss.h) against double-precision references of their definitions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/loss.h"
#include "engine/tests/random_vectors.h"

using namespace glide;
using namespace glide::engine;

namespace {

// A sample's logits scattered over a larger array (as the trainer lays them out), with labels
// at `labels` and, for softmax, corrections on the positions from `first`.
struct Case {
  std::vector<float> z;
  std::vector<std::uint32_t> slots, labels;
  std::vector<float> corrections;
  std::size_t first = 0;
  Case(std::size_t n, std::vector<std::uint32_t> lab, bool corrected) : labels(std::move(lab)) {
    Rng rng(5);
    z = engine::testing::randoms(3 * n, rng, -4, 4);
    for (std::size_t i = 0; i < n; ++i) slots.push_back(static_cast<std::uint32_t>(3 * i + 1));
    if (corrected) {
      first = n / 2;
      corrections = engine::testing::randoms(n - first, rng, -2, 0);
    }
  }
  SampleLogits logits() { return {z.data(), slots, labels, corrections, first}; }
  double logit(std::size_t i) const {  // as the loss sees it (corrected unless a label)
    double x = z[slots[i]];
    const bool label = std::find(labels.begin(), labels.end(), i) != labels.end();
    if (!label && i >= first && i - first < corrections.size()) x += corrections[i - first];
    return x;
  }
};

}  // namespace

TEST_CASE("softmax: loss and gradient are those of cross-entropy against the uniform label mix") {
  for (const bool corrected : {false, true}) {
    CAPTURE(corrected);
    Case c(40, {3, 25, 31}, corrected);
    const std::size_t n = c.slots.size();
    std::vector<double> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = c.logit(i);
    const double mx = *std::max_element(x.begin(), x.end());
    double sum = 0;
    for (double v : x) sum += std::exp(v - mx);
    double ref_loss = 0;
    std::vector<double> ref_grad(n);
    for (std::size_t i = 0; i < n; ++i) ref_grad[i] = std::exp(x[i] - mx) / sum;
    for (std::uint32_t p : c.labels) {
      ref_loss -= std::log(std::exp(x[p] - mx) / sum) / 3;
      ref_grad[p] -= 1.0 / 3;
    }
    const std::vector<float> before = c.z;
    const auto loss = make_loss(LossKind::kSoftmax);
    std::vector<float> buf;
    const float scale = 0.25f;
    const double l = loss->gradient(c.logits(), scale, kernels(), buf);
    CHECK(l == doctest::Approx(ref_loss).epsilon(1e-5));
    for (std::size_t i = 0; i < n; ++i)
      CHECK(c.z[c.slots[i]] == doctest::Approx(scale * ref_grad[i]).epsilon(1e-5).scale(1e-6));
    for (std::size_t i = 0; i < c.z.size(); ++i)  // only the sample's slots change
      if (i % 3 != 1) CHECK(c.z[i] == before[i]);
  }
}

TEST_CASE("softmax learns nothing from a sample without labels") {
  Case c(10, {}, false);
  std::vector<float> buf;
  CHECK(make_loss(LossKind::kSoftmax)->gradient(c.logits(), 1.0f, kernels(), buf) == 0);
  for (std::uint32_t slot : c.slots) CHECK(c.z[slot] == 0);
}

TEST_CASE("one-vs-all: loss and gradient are those of a logistic loss per label") {
  Case c(40, {0, 17}, false);
  const std::size_t n = c.slots.size();
  double ref_loss = 0;
  std::vector<double> ref_grad(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = c.z[c.slots[i]], p = 1 / (1 + std::exp(-x));
    const bool label = i == 0 || i == 17;
    ref_loss -= label ? std::log(p) : std::log(1 - p);
    ref_grad[i] = p - (label ? 1 : 0);
  }
  std::vector<float> buf;
  const double l = make_loss(LossKind::kSigmoid)->gradient(c.logits(), 0.5f, kernels(), buf);
  CHECK(l == doctest::Approx(ref_loss).epsilon(1e-5));
  for (std::size_t i = 0; i < n; ++i)
    CHECK(c.z[c.slots[i]] == doctest::Approx(0.5 * ref_grad[i]).epsilon(1e-5).scale(1e-6));
}

TEST_CASE("the probability each loss reports for a scored label") {
  const auto softmax = make_loss(LossKind::kSoftmax), sigmoid = make_loss(LossKind::kSigmoid);
  CHECK(softmax->kind() == LossKind::kSoftmax);
  CHECK(sigmoid->kind() == LossKind::kSigmoid);
  const std::vector<float> scores{1.5f, -0.5f, 0.25f, 3.0f};
  double sum = 0;
  for (float s : scores) sum += std::exp(double{s} - 3.0);
  double total = 0;
  for (float s : scores) {
    total += softmax->probability(s, 3.0f, sum);
    CHECK(sigmoid->probability(s, 3.0f, sum) ==
          doctest::Approx(1 / (1 + std::exp(-double{s}))).epsilon(1e-6));
  }
  CHECK(total == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(softmax->probability(3.0f, 3.0f, sum) == doctest::Approx(1 / sum).epsilon(1e-6));
}

TEST_CASE("a batch's gradient, along the shared neurons' rows, equals its samples' one by one") {
  // 37 samples (blocks of 16 and a remainder), 40 shared neurons with corrections, a few own
  // neurons per sample; labels among both, and one sample without labels.
  constexpr std::uint32_t kBatch = 37, kNeurons = 200;
  Rng rng(9);
  std::vector<std::uint32_t> shared;
  for (std::uint32_t j = 0; j < kNeurons; j += 5) shared.push_back(j);
  std::vector<std::vector<std::uint32_t>> own(kBatch), labels(kBatch);
  for (std::uint32_t s = 0; s < kBatch; ++s) {
    for (std::uint32_t j = 1 + s % 4; j < kNeurons; j += 5 * (3 + s % 5)) own[s].push_back(j);
    const auto n_own = static_cast<std::uint32_t>(own[s].size());
    if (s == 7) continue;
    labels[s] = {n_own + s % 40, static_cast<std::uint32_t>(s % n_own)};
    if (s % 3 == 0) labels[s].push_back(n_own + (s + 11) % 40);
  }
  std::vector<std::span<const std::uint32_t>> views(own.begin(), own.end());
  ActivePairs pairs;
  pairs.build(views, shared, kNeurons, kBatch);
  const std::vector<float> start = engine::testing::randoms(pairs.num_pairs(), rng, -4, 4);
  for (const LossKind kind : {LossKind::kSoftmax, LossKind::kSigmoid})
    for (const bool corrected : {true, false}) {
      CAPTURE(corrected);
      const auto loss = make_loss(kind);
      const std::vector<float> corrections =
          corrected ? engine::testing::randoms(shared.size(), rng, -2, 0) : std::vector<float>{};
      std::vector<float> z1 = start, z2 = start;
      std::vector<double> l1(kBatch), l2(kBatch);
      loss->batch_gradient({z1.data(), &pairs, labels, corrections}, 0.1f, kernels(), l1);
      loss->Loss::batch_gradient({z2.data(), &pairs, labels, corrections}, 0.1f, kernels(), l2);
      for (std::size_t i = 0; i < z1.size(); ++i)
        CHECK(z1[i] == doctest::Approx(z2[i]).epsilon(1e-5).scale(1e-3));
      for (std::uint32_t s = 0; s < kBatch; ++s)
        CHECK(l1[s] == doctest::Approx(l2[s]).epsilon(1e-5));
      if (kind == LossKind::kSoftmax) CHECK(l1[7] == 0);  // no labels: nothing to learn
    }
}
