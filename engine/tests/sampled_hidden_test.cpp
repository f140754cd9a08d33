// Sampled hidden layers against references: every neuron active equals the dense layer exactly;
// with a real active set, the step's gradients match finite differences of the dense network
// with the other neurons forced to zero, and untouched neurons keep their weights; the config
// round-trips and refuses what cannot work; a network with a sampled layer learns, saves and
// reloads to identical predictions.
#include <doctest/doctest.h>

#include <tbb/global_control.h>

#include <cmath>
#include <memory>
#include <vector>

#include "common/error.h"
#include "engine/checkpoint.h"
#include "engine/evaluator.h"
#include "engine/fit.h"
#include "engine/network.h"
#include "engine/output_sampler.h"
#include "engine/predictor.h"
#include "engine/staged_forward.h"
#include "engine/tests/output_storage.h"
#include "engine/tests/reference_network.h"
#include "engine/tests/small_problem.h"
#include "engine/trainer.h"

using namespace glide;
using namespace glide::engine;
using namespace glide::engine::testing;

namespace {

// hidden {7, 10, 5}: layer 1 (10 neurons) sampled at `sparsity`.
NetworkConfig three_layers(double sparsity, std::uint64_t seed) {
  NetworkConfig nc;
  nc.num_features = 12;
  nc.num_labels = 9;
  nc.hidden = {7, 10, 5};
  nc.seed = seed;
  nc.hidden_sampling.resize(3);
  nc.hidden_sampling[1].sampled = true;
  nc.hidden_sampling[1].sparsity = sparsity;
  nc.hidden_sampling[1].lsh.L = 4;
  nc.hidden_sampling[1].lsh.K = 1;
  nc.hidden_sampling[1].lsh.range_pow = 3;
  return nc;
}

// The active sets the network's sampled layers choose for the batch now.
ActiveMasks active_masks(const Network& net, const Batch& b) {
  HiddenActivations acts;
  net.forward_hidden(b.inputs, acts, kernels());
  ActiveMasks masks(net.config().hidden.size());
  for (std::size_t l = 0; l < masks.size(); ++l)
    if (net.config().hidden_sampled(l))
      masks[l].assign(acts.sampled[l].active.begin(),
                      acts.sampled[l].active.begin() + b.inputs.size());
  return masks;
}

}  // namespace

TEST_CASE("a sampled hidden layer with every neuron active equals the dense layer") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  NetworkConfig sc = three_layers(1.0, 4), dc = sc;
  dc.hidden_sampling.clear();
  Network sampled(sc), dense(dc);
  Batch b = tiny_batch();
  HiddenActivations as, ad;
  sampled.forward_hidden(b.inputs, as, kernels());
  dense.forward_hidden(b.inputs, ad, kernels());
  // The sampled layer itself is bit-exact; the dense layer after it reads the active inputs
  // packed, in the sampled order, so its sums round differently.
  for (std::size_t l = 0; l < 3; ++l)
    for (std::size_t s = 0; s < b.inputs.size(); ++s)
      for (std::uint32_t j = 0; j < sc.hidden[l]; ++j) {
        if (l < 2)
          CHECK(as.row(l, s)[j] == ad.row(l, s)[j]);
        else
          CHECK(as.row(l, s)[j] == doctest::Approx(ad.row(l, s)[j]).epsilon(1e-5));
      }
  CHECK(as.sampled[1].pairs.num_pairs() == b.inputs.size() * sc.hidden[1]);

  Trainer ts(sampled, TrainConfig{}, nullptr), td(dense, TrainConfig{}, nullptr);
  for (int step = 0; step < 3; ++step)
    CHECK(ts.train_batch(b.inputs, b.label_views).loss ==
          doctest::Approx(td.train_batch(b.inputs, b.label_views).loss).epsilon(1e-5));
  auto close = [](const AlignedArray<float>& a, const AlignedArray<float>& b) {
    float worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, std::fabs(a[i] - b[i]) / (1e-3f + std::fabs(b[i])));
    return worst;
  };
  for (std::size_t l = 0; l < 2; ++l) {
    CAPTURE(l);
    CHECK(close(sampled.hidden[l].w, dense.hidden[l].w) < 1e-4f);
    CHECK(close(sampled.hidden[l].m, dense.hidden[l].m) < 1e-3f);
  }
  CHECK(close(sampled.input.w, dense.input.w) < 1e-4f);
  CHECK(close(f32_rows(sampled).w, f32_rows(dense).w) < 1e-4f);
}

TEST_CASE("gradients through a sampled hidden layer match finite differences of the masked net") {
  Batch b = tiny_batch();
  const float h = 1e-3f;
  std::unique_ptr<Network> found;
  ActiveMasks masks;
  for (std::uint64_t seed = 1; seed < 300 && !found; ++seed) {
    auto candidate = std::make_unique<Network>(three_layers(0.4, seed));
    for (std::size_t i = 0; i < candidate->input_bias.size(); ++i)
      candidate->input_bias.w[i] = 0.3f;
    for (auto& hb : candidate->hidden_bias)
      for (std::size_t i = 0; i < hb.size(); ++i) hb.w[i] = 0.3f;
    masks = active_masks(*candidate, b);
    double kink = 0;
    reference_loss(*candidate, b, &kink, masks);
    if (kink > 20 * h) found = std::move(candidate);
  }
  REQUIRE(found);
  for (const auto& on : masks[1]) REQUIRE(on.size() == 4);  // 40% of 10 neurons
  int checked = 0;
  check_step_against_finite_differences(*found, b, h, masks, checked);
  CHECK(checked > 60);
}

TEST_CASE("neurons no sample activated keep their weights and Adam moments") {
  Batch b = tiny_batch();
  Network net(three_layers(0.2, 7));
  const ActiveMasks masks = active_masks(net, b);
  std::vector<bool> touched(10, false);
  for (const auto& on : masks[1])
    for (std::uint32_t j : on) touched[j] = true;
  const int untouched = static_cast<int>(std::count(touched.begin(), touched.end(), false));
  REQUIRE(untouched > 0);  // 4 samples x 2 neurons cannot cover 10
  const ParamMatrix before = net.hidden[0];
  Trainer trainer(net, TrainConfig{}, nullptr);
  trainer.train_batch(b.inputs, b.label_views);
  const ParamMatrix& after = net.hidden[0];
  int changed = 0;
  for (std::uint32_t j = 0; j < 10; ++j) {
    CAPTURE(j);
    const bool same =
        std::equal(after.row(j), after.row(j) + after.cols, before.row(j)) &&
        std::equal(after.m.data() + j * after.stride, after.m.data() + (j + 1) * after.stride,
                   before.m.data() + j * before.stride);
    if (!touched[j]) CHECK(same);  // an active neuron whose ReLU was off may not move either
    changed += !same;
  }
  CHECK(changed > 0);
}

TEST_CASE("the layer after a sampled one follows rows moved between layers (early exits)") {
  Network net(three_layers(0.4, 3));
  Batch b = tiny_batch();
  HiddenActivations full, staged;
  net.forward_hidden(b.inputs, full, kernels());
  prepare_activations(net, 4, staged);
  forward_layer(net, 0, b.inputs, 4, staged, kernels());
  forward_layer(net, 1, b.inputs, 4, staged, kernels());
  // Inputs 0 and 2 answered early: rows 1 and 3 move to the front, the batch shrinks to 2.
  for (std::size_t to = 0; to < 2; ++to)
    std::copy_n(staged.row(1, 2 * to + 1), staged.strides[1], staged.row(1, to));
  forward_layer(net, 2, b.inputs, 2, staged, kernels());
  for (std::size_t to = 0; to < 2; ++to)
    for (std::uint32_t j = 0; j < 5; ++j)
      CHECK(staged.row(2, to)[j] == doctest::Approx(full.row(2, 2 * to + 1)[j]).epsilon(1e-6));
}

TEST_CASE("hidden_sampling config: JSON round trip and named errors") {
  Config c;
  c.net.num_features = 10;
  c.net.num_labels = 5;
  c.net.hidden = {16, 32};
  c.net.hidden_sampling.resize(2);
  c.net.hidden_sampling[1].sampled = true;
  c.net.hidden_sampling[1].sparsity = 0.25;
  c.net.hidden_sampling[1].lsh.L = 7;
  const Config back = config_from_json(to_json(c), "round trip");
  CHECK(to_json(back) == to_json(c));
  CHECK(back.net.hidden_sampled(1));
  CHECK_FALSE(back.net.hidden_sampled(0));
  CHECK(back.net.hidden_sampling[1].lsh.L == 7);

  NetworkConfig bad = c.net;
  bad.hidden_sampling[0].sampled = true;
  CHECK_THROWS_WITH_AS(validate(bad), doctest::Contains("hidden_sampling[0]"), Error);
  bad = c.net;
  bad.hidden_sampling.resize(3);
  CHECK_THROWS_WITH_AS(validate(bad), doctest::Contains("one entry per hidden layer"), Error);
  bad = c.net;
  bad.hidden_sampling[1].sparsity = 0;
  CHECK_THROWS_WITH_AS(validate(bad), doctest::Contains("hidden_sampling[1].sparsity"), Error);
  CHECK_THROWS_WITH_AS(
      config_from_json(R"({"network": {"hidden_sampling": [{"mode": "lhs"}]}})", "f.json"),
      doctest::Contains("hidden_sampling[0].mode"), Error);
}

TEST_CASE("a network with a sampled hidden layer learns and reloads to identical predictions") {
  SmallProblem p(3);
  Config c = p.config;
  c.net.hidden = {64, 256};
  c.net.hidden_sampling.resize(2);
  c.net.hidden_sampling[1].sampled = true;
  c.net.hidden_sampling[1].sparsity = 0.1;
  Network net(c.net);
  Trainer trainer(net, c.train, make_training_sampler(c, net, false));
  fit(net, trainer, p.data.train, c.train, {});
  const EvalResult e = evaluate(net, p.data.test, EvalMode::kExact, nullptr);
  MESSAGE("sampled hidden layer (10% of 256): exact P@1 " << e.precision[0]);
  CHECK(e.precision[0] >= 0.3);

  const std::string path = temp_path("glide_sampled_hidden", "model.glide");
  save_model(path, net, c, {});
  const InferenceModel loaded(path, false);
  std::vector<data::SparseView> inputs;
  for (std::size_t i = 0; i < 200; ++i) inputs.push_back(p.data.test.features(i));
  std::vector<Prediction> a, b;
  predict_topk(net, inputs, 5, EvalMode::kExact, nullptr, a);
  loaded.predict(inputs, 5, EvalMode::kExact, b);
  REQUIRE(a.size() == b.size());
  int same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i].labels == b[i].labels;
  CHECK(same == static_cast<int>(a.size()));
}
