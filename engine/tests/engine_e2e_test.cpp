// The engine end to end on planted synthetic data: it learns, its checkpoints round-trip exactly,
// damaged ones are refused by name, and a resumed run continues as the uninterrupted one.
#include <doctest/doctest.h>

#include <tbb/global_control.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "common/error.h"
#include "data/synth_xc.h"
#include "engine/checkpoint.h"
#include "engine/fit.h"
#include "engine/output_weights.h"
#include "engine/predictor.h"
#include "engine/tests/output_storage.h"
#include "engine/tests/small_problem.h"

using namespace glide;
using namespace glide::engine;
using glide::engine::testing::f32_rows;

namespace {

struct Fixture : testing::SmallProblem {
  Fixture() : SmallProblem(4) {}
};

std::string temp_path(const std::string& name) {
  return testing::temp_path("glide_engine_e2e", name);
}

double most_frequent_label_p1(const data::Dataset& train, const data::Dataset& test) {
  std::map<std::uint32_t, std::size_t> counts;
  for (std::uint32_t y : train.label_ids) ++counts[y];
  std::uint32_t best = 0;
  std::size_t best_count = 0;
  for (auto [y, c] : counts)
    if (c > best_count) best = y, best_count = c;
  std::size_t hits = 0, points = 0;
  for (std::size_t i = 0; i < test.num_points(); ++i) {
    if (test.labels(i).empty()) continue;
    ++points;
    for (std::uint32_t y : test.labels(i)) hits += y == best;
  }
  return static_cast<double>(hits) / points;
}

std::unique_ptr<OutputSampler> sampler_for(const Config& c, const Network& net) {
  switch (c.net.sampling) {
    case OutputSampling::kDense:
      return nullptr;
    case OutputSampling::kRandom:
      return make_random_sampler(net.num_labels(),
                                 sampling_budget(net.num_labels(), c.net.sparsity), c.train.seed);
    default:
      return make_lsh_sampler(c.net, c.train, net.output->rows_f32(), true);
  }
}

}  // namespace

TEST_CASE("training reaches P@1 far above the most-frequent-label baseline") {
  Fixture f;
  const double baseline = most_frequent_label_p1(f.data.train, f.data.test);
  MESSAGE("most-frequent-label P@1: " << baseline);
  for (OutputSampling s : {OutputSampling::kLsh, OutputSampling::kRandom, OutputSampling::kDense}) {
    Config c = f.config;
    c.net.sampling = s;
    // Sampled inference below retrieves from the tables alone (no output index): over so few
    // labels the default 8 tables leave most queries' buckets empty.
    c.net.lsh.L = 50;
    Network net(c.net);
    Trainer trainer(net, c.train, sampler_for(c, net));
    fit(net, trainer, f.data.train, c.train, {});
    const EvalResult e = evaluate(net, f.data.test, EvalMode::kExact, nullptr);
    MESSAGE(name(s) << ": exact P@1 " << e.precision[0] << ", P@5 " << e.precision[4]);
    CHECK(e.precision[0] >= 3 * baseline);
    CHECK(e.precision[0] >= 0.3);
    if (s == OutputSampling::kLsh) {
      auto lsh = make_lsh_sampler(c.net, c.train, net.output->rows_f32(), false);
      const EvalResult es = evaluate(net, f.data.test, EvalMode::kSampled, lsh.get());
      MESSAGE("lsh: sampled P@1 " << es.precision[0] << " scoring " << es.mean_scored
                                  << " labels per point");
      // Scoring the same number of uniformly random labels would find the right one with
      // probability ~ exact P@1 x scored / labels; LSH retrieval must do far better.
      const double random_candidates = e.precision[0] * es.mean_scored / c.net.num_labels;
      CHECK(es.precision[0] >= 20 * random_candidates);
      CHECK(es.precision[0] >= 0.1);
      CHECK(es.mean_scored < 0.05 * c.net.num_labels);
    }
  }
}

TEST_CASE("sampled inference scores the largest-bias labels, then the tables' candidates") {
  NetworkConfig nc;
  nc.num_features = 20;
  nc.num_labels = 1000;
  nc.hidden = {16};
  nc.sparsity = 0.01;  // budget 10
  nc.prior_fraction = 0.3;
  Network net(nc);
  for (std::uint32_t j = 0; j < nc.num_labels; ++j) net.output_bias.w[j] = -1.0f;
  const std::uint32_t top[3] = {700, 5, 311};
  for (int i = 0; i < 3; ++i) net.output_bias.w[top[i]] = 3.0f - i;
  Config c;
  c.net = nc;
  auto sampler = make_inference_lsh_sampler(c, net);
  std::vector<float> h(16, 0.5f);
  std::vector<std::uint32_t> out;
  sampler->select(h.data(), out);
  REQUIRE(out.size() >= 3);
  CHECK(out.size() <= 10);
  CHECK(std::vector<std::uint32_t>(out.begin(), out.begin() + 3) ==
        std::vector<std::uint32_t>{700, 5, 311});
  c.net.prior_fraction = 0;
  sampler = make_inference_lsh_sampler(c, net);
  sampler->select(h.data(), out);
  CHECK(std::find(out.begin(), out.end(), 700u) == out.end());  // not by chance: 1 - 10/1000
}

TEST_CASE("sampled inference through LSH tables selects the same labels for the same input") {
  // Buckets far fuller than the budget, so which tables are visited first decides: the choice is
  // seeded by the input's buckets, not by the thread's random state, so a repeated query (after
  // others, on any thread, in another run) gets the same labels.
  NetworkConfig nc;
  nc.num_features = 20;
  nc.num_labels = 4000;
  nc.hidden = {16};
  nc.sparsity = 0.005;  // budget 20
  nc.prior_fraction = 0;
  nc.lsh.range_pow = 4;
  Network net(nc);
  Config c;
  c.net = nc;
  const auto sampler = make_inference_lsh_sampler(c, net);
  std::mt19937 gen(5);
  std::normal_distribution<float> g;
  std::vector<std::vector<float>> hs(6, std::vector<float>(16));
  for (auto& h : hs)
    for (float& v : h) v = g(gen);
  std::vector<std::vector<std::uint32_t>> first(hs.size());
  for (std::size_t i = 0; i < hs.size(); ++i) sampler->select(hs[i].data(), first[i]);
  std::vector<std::uint32_t> again;
  for (std::size_t i = hs.size(); i-- > 0;) {
    sampler->select(hs[i].data(), again);
    CHECK(again == first[i]);
  }
  const auto fresh = make_inference_lsh_sampler(c, net);
  fresh->select(hs[3].data(), again);
  CHECK(again == first[3]);
  CHECK(first[0].size() == 20);
  CHECK(first[0] != first[1]);
}

TEST_CASE("a saved and reloaded model predicts identically") {
  Fixture f;
  Config c = f.config;
  c.train.epochs = 1;
  Network net(c.net);
  Trainer trainer(net, c.train, sampler_for(c, net));
  fit(net, trainer, f.data.train, c.train, {});
  const std::string path = temp_path("saved.glide");
  save_model(path, net, c, {6000, trainer.batches()});
  const InferenceModel loaded(path, false);
  CHECK(to_json(loaded.config()) == to_json(c));
  CHECK_FALSE(loaded.network().has_moments());  // inference: no Adam state allocated
  {
    // A model loaded without its optimizer state can still be trained (fresh moments).
    LoadedModel m = load_model(path, /*optimizer_state=*/false);
    REQUIRE_FALSE(m.net->has_moments());
    Trainer t(*m.net, c.train, sampler_for(c, *m.net));
    std::vector<data::SparseView> in{f.data.train.features(0)};
    std::vector<std::span<const std::uint32_t>> ys{f.data.train.labels(0)};
    CHECK(t.train_batch(in, ys).loss > 0);
    CHECK(m.net->has_moments());
  }
  std::vector<data::SparseView> inputs;
  for (std::size_t i = 0; i < 200; ++i) inputs.push_back(f.data.test.features(i));
  std::vector<Prediction> a, b;
  predict_topk(net, inputs, 5, EvalMode::kExact, nullptr, a);
  loaded.predict(inputs, 5, EvalMode::kExact, b);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].labels == b[i].labels);
    CHECK(a[i].scores == b[i].scores);
  }
}

TEST_CASE("damaged or foreign model files are refused with a named error") {
  Fixture f;
  Config c = f.config;
  Network net(c.net);
  const std::string path = temp_path("damaged.glide");
  save_model(path, net, c, {});
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size / 2);
  CHECK_THROWS_WITH_AS(load_model(path), doctest::Contains("truncated"), Error);
  { std::ofstream(path) << "100 20 5\n1 3:1\n"; }
  CHECK_THROWS_WITH_AS(load_model(path), doctest::Contains("not a glide model file"), Error);
  CHECK_THROWS_WITH_AS(load_model(temp_path("missing.glide")), doctest::Contains("missing.glide"),
                       Error);
  // A model whose config disagrees with its tensors.
  Config wrong = c;
  wrong.net.hidden = {32};
  Network other(wrong.net);
  save_model(path, other, c, {});
  CHECK_THROWS_WITH_AS(load_model(path), doctest::Contains("shape"), Error);
}

TEST_CASE("resumed training continues exactly as uninterrupted training (1 thread)") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  Fixture f;
  for (OutputSampling s : {OutputSampling::kRandom, OutputSampling::kDense}) {
    CAPTURE(name(s));
    Config c = f.config;
    c.net.sampling = s;
    c.train.epochs = 1.5;
    // Stops mid-epoch on a batch boundary (the planned epochs, and so the learning-rate
    // schedule, stay those of the full run).
    const testing::ResumeRuns runs =
        testing::run_full_and_resumed(c, f.data.train, temp_path("resume.glide"));
    const Network &full = *runs.full, *resumed = runs.resumed.net.get();
    CHECK(runs.resumed_end.samples == runs.full_end.samples);
    CHECK(resumed->step == full.step);
    bool same = true;
    for (std::size_t i = 0; i < f32_rows(full).w.size() && same; ++i)
      same = f32_rows(full).w[i] == f32_rows(*resumed).w[i];
    for (std::size_t i = 0; i < full.input.w.size() && same; ++i)
      same = full.input.w[i] == resumed->input.w[i];
    CHECK(same);
  }
}
