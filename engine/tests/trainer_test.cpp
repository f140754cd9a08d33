// The training step against references: gradients against finite differences of a
// double-precision dense forward pass, and a sampled layer with every neuron active against
// the dense layer.
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "common/rng.h"
#include "engine/logq_correction.h"
#include "engine/network.h"
#include "engine/output_sampler.h"
#include "engine/tests/output_storage.h"
#include "engine/tests/reference_network.h"
#include "engine/trainer.h"
#include "tests/error_of.h"

using namespace glide;
using namespace glide::engine;
using namespace glide::engine::testing;

namespace {

void check_gradients(LossKind loss) {
  NetworkConfig nc;
  nc.num_features = 12;
  nc.num_labels = 9;
  nc.hidden = {7, 5};
  nc.loss = loss;
  Batch b = tiny_batch();
  // Finite differences are wrong across a ReLU kink: use a network whose pre-activations all
  // stay well away from zero compared with the step.
  const float h = 1e-3f;
  std::unique_ptr<Network> found;
  for (nc.seed = 1; nc.seed < 200 && !found; ++nc.seed) {
    auto candidate = std::make_unique<Network>(nc);
    for (std::size_t i = 0; i < candidate->input_bias.size(); ++i)
      candidate->input_bias.w[i] = 0.3f;
    for (auto& hb : candidate->hidden_bias)
      for (std::size_t i = 0; i < hb.size(); ++i) hb.w[i] = 0.3f;
    double kink = 0;
    reference_loss(*candidate, b, &kink);
    if (kink > 20 * h) found = std::move(candidate);
  }
  REQUIRE(found);
  int checked = 0;
  const double step_loss = check_step_against_finite_differences(*found, b, h, {}, checked);
  CHECK(checked > 100);  // most parameters carry a gradient; the check is not vacuous
  CHECK(step_loss > 0);
}

}  // namespace

TEST_CASE("softmax gradients match finite differences") {
  check_gradients(LossKind::kSoftmax);
}
TEST_CASE("sigmoid gradients match finite differences") {
  check_gradients(LossKind::kSigmoid);
}

TEST_CASE("reported loss is the reference loss before the step") {
  NetworkConfig nc;
  nc.num_features = 12;
  nc.num_labels = 9;
  nc.hidden = {6};
  Network net(nc);
  Batch b = tiny_batch();
  const double ref = reference_loss(net, b);
  Trainer trainer(net, TrainConfig{}, nullptr);
  CHECK(trainer.train_batch(b.inputs, b.label_views).loss == doctest::Approx(ref).epsilon(1e-5));
  CHECK(reference_loss(net, b) < ref);  // and the step lowered it
}

TEST_CASE("a sampled layer with every neuron active equals the dense layer") {
  // With every neuron sampled each is a certain candidate: the log-q correction is zero too.
  for (const bool logq : {false, true}) {
    CAPTURE(logq);
    NetworkConfig nc;
    nc.num_features = 12;
    nc.num_labels = 40;
    nc.hidden = {16};
    nc.seed = 5;
    Network dense(nc), sampled(nc);
    Batch b = tiny_batch();
    TrainConfig tc;
    Trainer td(dense, tc, nullptr);
    Trainer ts(sampled, tc, make_random_sampler(nc.num_labels, nc.num_labels, 3, logq));
    for (int step = 0; step < 3; ++step) {
      const BatchResult rd = td.train_batch(b.inputs, b.label_views);
      const BatchResult rs = ts.train_batch(b.inputs, b.label_views);
      CHECK(rs.loss == doctest::Approx(rd.loss).epsilon(1e-6));
      CHECK(rs.active_pairs == rd.active_pairs);
    }
    for (std::uint32_t j = 0; j < nc.num_labels; ++j)
      for (std::uint32_t i = 0; i < nc.hidden[0]; ++i)
        CHECK(f32_rows(sampled).row(j)[i] ==
              doctest::Approx(f32_rows(dense).row(j)[i]).epsilon(1e-5));
    for (std::uint32_t f = 0; f < nc.num_features; ++f)
      for (std::uint32_t i = 0; i < nc.hidden[0]; ++i)
        CHECK(sampled.input.row(f)[i] == doctest::Approx(dense.input.row(f)[i]).epsilon(1e-5));
  }
}

TEST_CASE("log-q corrections match the measured probability of being a shared candidate") {
  // Labels drawn from a skewed distribution, one per sample, batches of B; U uniform draws
  // among the rest. For sample 0 of every batch, each other neuron is a shared candidate with
  // probability q_j; the correction must be -log q_j.
  const std::uint32_t N = 40, B = 8, U = 4;
  std::vector<double> cdf(N);
  double total = 0;
  for (std::uint32_t j = 0; j < N; ++j) cdf[j] = total += 1.0 / (1.0 + j);
  LogQCorrection logq(N);
  glide::Rng rng(11);
  std::vector<double> seen(N, 0), predicted(N, 0);
  std::vector<std::uint32_t> ys(B), stamp(N, 0), shared;
  std::uint32_t epoch = 0;
  std::vector<float> corr;
  const int batches = 40000;
  for (int t = 0; t < batches; ++t) {
    std::vector<std::span<const std::uint32_t>> views;
    for (std::uint32_t s = 0; s < B; ++s) {
      const double u = rng.uniform() * total;
      ys[s] = static_cast<std::uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
      views.push_back(std::span<const std::uint32_t>(&ys[s], 1));
    }
    batch_labels(views, stamp, epoch, shared);
    const std::size_t labels = shared.size();
    for (std::uint32_t drawn = 0; drawn < U && shared.size() < N;) {
      const std::uint32_t j = rng.below(N);
      if (stamp[j] == epoch) continue;
      stamp[j] = epoch;
      shared.push_back(j);
      ++drawn;
    }
    logq.observe(views);
    logq.shared_corrections(shared, B, shared.size() - labels, labels, corr);
    if (t < batches / 4) continue;  // let the frequency estimates settle
    // Sample 0's view: which other neurons are candidates, and the q the corrections claim.
    std::vector<float> all;
    std::vector<std::uint32_t> everyone(N);
    for (std::uint32_t j = 0; j < N; ++j) everyone[j] = j;
    logq.shared_corrections(everyone, B, shared.size() - labels, labels, all);
    for (std::uint32_t j = 0; j < N; ++j) {
      if (j == ys[0]) continue;
      bool in_others = false;
      for (std::uint32_t s = 1; s < B; ++s) in_others |= ys[s] == j;
      seen[j] += in_others || (std::find(shared.begin() + labels, shared.end(), j) != shared.end());
      predicted[j] += std::exp(-all[j]);
    }
  }
  for (std::uint32_t j = 0; j < N; ++j) {
    CAPTURE(j);
    CHECK(predicted[j] == doctest::Approx(seen[j]).epsilon(0.08));
  }
  // A neuron never seen as a label is only ever drawn uniformly.
  LogQCorrection fresh(N);
  std::vector<std::uint32_t> one{3};
  fresh.shared_corrections(one, B, U, 10, corr);
  CHECK(corr[0] == doctest::Approx(std::log((N - 10) / double(U))));
}

// Every output weight moved from `start` half as far in `half` as in `full`, and the step moved
// more weights than there are labels.
static void check_half_output_steps(const Network& start, const Network& full,
                                    const Network& half) {
  std::size_t moved = 0;
  for (std::uint32_t j = 0; j < start.num_labels(); ++j)
    for (std::uint32_t i = 0; i < start.last_hidden(); ++i) {
      const float d_full = f32_rows(full).row(j)[i] - f32_rows(start).row(j)[i];
      const float d_half = f32_rows(half).row(j)[i] - f32_rows(start).row(j)[i];
      CHECK(d_half == doctest::Approx(0.5f * d_full).epsilon(1e-3).scale(1e-6));
      moved += d_full != 0;
    }
  CHECK(moved > start.num_labels());
}

// A dense network small enough that one step's every weight change can be checked.
static NetworkConfig small_dense_config() {
  NetworkConfig nc;
  nc.num_features = 12;
  nc.num_labels = 40;
  nc.hidden = {16};
  nc.seed = 9;
  return nc;
}

TEST_CASE("the learning-rate scale scales the first step exactly") {
  const NetworkConfig nc = small_dense_config();
  for (const char* optimizer : {"sgd", "adam", "adagrad"}) {
    CAPTURE(optimizer);
    Network start(nc), full(nc), half(nc);
    TrainConfig tc;
    tc.optimizer = tc.output_optimizer = parse_enum<Optimizer>(optimizer, "optimizer");
    // Steps well above the weights' float spacing.
    tc.lr = tc.output_lr = tc.optimizer == Optimizer::kSgd ? 1.0 : 0.01;
    tc.output_eps = tc.eps;
    Batch b = tiny_batch();
    Trainer tf(full, tc, nullptr), th(half, tc, nullptr);
    th.set_lr_scale(0.5);
    tf.train_batch(b.inputs, b.label_views);
    th.train_batch(b.inputs, b.label_views);
    check_half_output_steps(start, full, half);
  }
}

TEST_CASE("a batch smaller than the one before it trains on its own rows only") {
  // The activations keep the rows of the largest batch so far; the backward passes visited all
  // of them, so an epoch's short last batch also applied the previous batch's stale gradients
  // (and a sampled hidden layer read past its packed activations).
  tbb::global_control one_thread(tbb::global_control::max_allowed_parallelism, 1);
  NetworkConfig nc;
  nc.num_features = 12;
  nc.num_labels = 40;
  nc.hidden = {16, 8};
  nc.seed = 5;
  TrainConfig tc;
  Network after_big(nc);
  Trainer continuing(after_big, tc, nullptr);
  const Batch big = tiny_batch();
  continuing.train_batch(big.inputs, big.label_views);
  Network fresh_copy = after_big;
  Trainer fresh(fresh_copy, tc, nullptr);
  Batch small;
  small.add({1, 4}, {0.8f, 1.1f}, {5});
  small.finish();
  continuing.train_batch(small.inputs, small.label_views);
  fresh.train_batch(small.inputs, small.label_views);
  const std::vector<float*> a = parameters(after_big), b = parameters(fresh_copy);
  REQUIRE(a.size() == b.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ += *a[i] != *b[i];
  CHECK(differ == 0);
}

TEST_CASE("a network larger than the machine's memory is a named error before any allocation") {
  NetworkConfig c;
  c.num_features = 100;
  c.num_labels = 4000000000u;  // an XC header's label count; 128 x 4e9 x 12 bytes = 5.6 TB
  const std::string labels = glide::testing::error_of([&] { Network net(c); });
  CHECK(labels.find("num_labels 4000000000 x hidden 128") != std::string::npos);
  CHECK(labels.find("TB") != std::string::npos);
  c.num_labels = 10;
  c.num_features = 100000000;
  c.hidden = {65536};
  const std::string hidden = glide::testing::error_of([&] { Network net(c); });
  CHECK(hidden.find("num_features 100000000 x hidden[0] 65536") != std::string::npos);
}

TEST_CASE("the output layer steps with its own optimizer and learning rate") {
  const NetworkConfig nc = small_dense_config();
  Network start(nc), same(nc), output_half(nc);
  TrainConfig tc;
  tc.optimizer = tc.output_optimizer = Optimizer::kSgd;
  tc.lr = tc.output_lr = 1.0;
  TrainConfig th = tc;
  th.output_lr = 0.5;
  Batch b = tiny_batch();
  Trainer(same, tc, nullptr).train_batch(b.inputs, b.label_views);
  Trainer(output_half, th, nullptr).train_batch(b.inputs, b.label_views);
  // The first step's gradients are the same in both: the output rows move half as far, the
  // input rows (lr 1 in both) as far.
  check_half_output_steps(start, same, output_half);
  for (std::uint32_t f = 0; f < nc.num_features; ++f)
    for (std::uint32_t i = 0; i < nc.hidden[0]; ++i)
      CHECK(output_half.input.row(f)[i] == doctest::Approx(same.input.row(f)[i]).epsilon(1e-6));
  // Adagrad's first step on the output layer moves each touched weight by output_lr.
  Network ag(nc);
  TrainConfig ta = tc;
  ta.output_optimizer = Optimizer::kAdagrad;
  ta.output_lr = 0.01;
  ta.output_eps = ta.eps;  // far below the gradients
  Trainer(ag, ta, nullptr).train_batch(b.inputs, b.label_views);
  std::size_t full_steps = 0;
  for (std::uint32_t j = 0; j < nc.num_labels; ++j)
    for (std::uint32_t i = 0; i < nc.hidden[0]; ++i) {
      const float d = std::fabs(f32_rows(ag).row(j)[i] - f32_rows(start).row(j)[i]);
      CHECK(d <= 0.01f * 1.0001f);
      full_steps += d > 0.0099f;
    }
  CHECK(full_steps > nc.num_labels);
}
