// The output index (engine/output_index.h) and IndexPredictor on the small planted problem: the
// answer against the exact predictor's, the candidates against their definition, the model-file
// round trip, and damaged sections.
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>

#include "common/error.h"
#include "engine/evaluator.h"
#include "engine/index_predictor.h"
#include "engine/model_file.h"
#include "engine/output_index.h"
#include "engine/tests/small_problem.h"
#include "tests/error_of.h"

using namespace glide;
using namespace glide::engine;
using glide::testing::contains;
using glide::testing::error_of;

namespace {

// A model trained on the planted problem, its index, and both predictors.
struct Indexed {
  engine::testing::SmallProblem problem{3};
  std::shared_ptr<Network> net;
  std::shared_ptr<const OutputIndex> index;
  std::shared_ptr<const Predictor> exact, sampled;
  Indexed() {
    net = std::make_shared<Network>(problem.config.net);
    {
      // One thread: HOGWILD training on more would make the model, and the figures the tests
      // bound, differ from run to run.
      tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
      Trainer trainer(*net, problem.config.train,
                      make_training_sampler(problem.config, *net, false));
      fit(*net, trainer, problem.data.train, problem.config.train, {});
    }
    index = OutputIndex::build(*net, problem.data.train);
    PredictOptions o;
    exact = make_predictor(net, problem.config, o);
    o.mode = EvalMode::kSampled;
    o.index = index;
    sampled = make_predictor(net, problem.config, o);
  }
};

const Indexed& indexed() {
  static const Indexed x;
  return x;
}

// The candidates of test point i under `probes`, through the index's own steps.
std::vector<std::uint32_t> candidates_of(const Indexed& x, std::size_t i, std::uint32_t probes,
                                         std::uint32_t k) {
  const data::SparseView in = x.problem.data.test.features(i);
  HiddenActivations acts;
  x.net->forward_hidden(std::span(&in, 1), acts, kernels());
  const float* h = acts.last(0);
  std::vector<float> groups(x.index->groups());
  x.index->score_groups(h, 0, 1, groups.data());
  std::vector<std::uint32_t> out;
  x.index->candidates(h, groups.data(), probes, k, out);
  return out;
}

}  // namespace

TEST_CASE("index prediction is the exact answer whenever the exact top-k are candidates") {
  const Indexed& x = indexed();
  const data::Dataset& test = x.problem.data.test;
  int covered = 0;
  for (std::size_t i = 0; i < 600; ++i) {
    CAPTURE(i);
    const std::uint32_t k = i % 2 ? 5 : 1;
    const data::SparseView in = test.features(i);
    std::vector<Prediction> e, s;
    x.exact->predict(std::span(&in, 1), k, e);
    x.sampled->predict(std::span(&in, 1), k, s);
    const auto cand = candidates_of(x, i, OutputIndex::kDefaultProbes, k);
    const std::set<std::uint32_t> set(cand.begin(), cand.end());
    CHECK(set.size() == cand.size());   // each label once
    CHECK(s[0].scored == cand.size());  // exactly the candidates were scored
    REQUIRE(s[0].labels.size() == k);
    for (const std::uint32_t l : s[0].labels) CHECK(set.count(l) == 1);
    const bool all_in = std::all_of(e[0].labels.begin(), e[0].labels.end(),
                                    [&](std::uint32_t l) { return set.count(l) > 0; });
    if (all_in) {
      ++covered;
      CHECK(s[0].labels == e[0].labels);
    }
  }
  CHECK(covered > 100);  // the property was exercised
}

TEST_CASE("index prediction keeps the exact P@1 while scoring a few percent of the labels") {
  const Indexed& x = indexed();
  TopLabels exact_top;
  EvalOptions eo;
  eo.top_out = &exact_top;
  const EvalResult e = evaluate(*x.exact, x.problem.data.test, eo);
  eo.top_out = nullptr;
  eo.reference = &exact_top;
  const EvalResult s = evaluate(*x.sampled, x.problem.data.test, eo);
  MESSAGE("exact P@1 " << e.precision[0] << ", sampled P@1 " << s.precision[0] << " scoring "
                       << s.mean_scored << " of " << x.net->num_labels() << " labels");
  CHECK(e.precision[0] > 0.5);  // a model that learned the planted problem
  CHECK(s.precision[0] >= e.precision[0] - 0.02);
  // The exact top-1 is found for most points: a floor at the default probes, below 1 because the
  // index does not propose labels no similar training point has (docs/inference.md).
  MESSAGE("recall@1 against exact " << s.recall[0] << ", recall@5 " << s.recall[4]);
  CHECK(s.recall[0] >= 0.85);
  // 1,000 labels: the 32 head labels alone are 3%.
  CHECK(s.mean_scored <= 0.15 * x.net->num_labels());
}

TEST_CASE("index candidates: head labels, then cluster labels, at least k, more with probes") {
  const Indexed& x = indexed();
  for (std::size_t i = 0; i < 50; ++i) {
    const auto few = candidates_of(x, i, 1, 1);
    const auto many = candidates_of(x, i, x.index->clusters(), 1);
    // The head comes first, in order.
    REQUIRE(few.size() >= x.index->head().size());
    CHECK(std::equal(x.index->head().begin(), x.index->head().end(), few.begin()));
    CHECK(many.size() >= few.size());
    // k above what the clusters know still gives k labels.
    const auto all = candidates_of(x, i, 1, x.net->num_labels());
    CHECK(all.size() == x.net->num_labels());
  }
}

TEST_CASE("the index is deterministic and survives the model file") {
  const Indexed& x = indexed();
  const auto again = OutputIndex::build(*x.net, x.problem.data.train);
  const std::string path = engine::testing::temp_path("output_index_test", "indexed.glide");
  SaveOptions so;
  so.extra_sections = [&](ModelFileWriter& w) { x.index->save(w); };
  save_model(path, *x.net, x.problem.config, {}, so);
  const auto loaded = OutputIndex::load(path, x.net->num_labels(), x.net->output->cols());
  REQUIRE(loaded);
  CHECK(loaded->clusters() == x.index->clusters());
  CHECK(loaded->groups() == x.index->groups());
  CHECK(loaded->head() == x.index->head());
  // Same candidates from the rebuilt and the loaded index.
  PredictOptions o;
  o.mode = EvalMode::kSampled;
  for (const auto& idx : {again, loaded}) {
    o.index = idx;
    const auto p = make_predictor(x.net, x.problem.config, o);
    for (std::size_t i = 0; i < 100; ++i) {
      const data::SparseView in = x.problem.data.test.features(i);
      std::vector<Prediction> a, b;
      p->predict(std::span(&in, 1), 5, a);
      x.sampled->predict(std::span(&in, 1), 5, b);
      CHECK(a[0].labels == b[0].labels);
      CHECK(a[0].scored == b[0].scored);
    }
  }
  // A model loaded for inference finds the index in its file.
  const InferenceModel model(path, {EvalMode::kSampled});
  CHECK(dynamic_cast<const IndexPredictor*>(&model.predictor(EvalMode::kSampled)) != nullptr);
  // Without one, sampled mode has the LSH tables.
  const std::string bare = engine::testing::temp_path("output_index_test", "bare.glide");
  save_model(bare, *x.net, x.problem.config, {});
  CHECK(!OutputIndex::load(bare, x.net->num_labels(), x.net->output->cols()));
}

TEST_CASE("a damaged or mismatched index section is named") {
  const Indexed& x = indexed();
  const std::string path = engine::testing::temp_path("output_index_test", "damaged.glide");
  const std::uint32_t L = x.net->num_labels(), d = x.net->output->cols();
  SUBCASE("a label out of range") {
    std::vector<std::uint32_t> labels{0, L}, offsets{0, 2}, goffsets{0, 1};
    AlignedArray<float> cen(padded(d));
    cen[0] = 1;
    SaveOptions so;
    so.extra_sections = [&](ModelFileWriter& w) {
      w.add_json("output_index.meta", R"({"method":"query-clusters","labels":)" +
                                          std::to_string(L) + R"(,"cols":)" + std::to_string(d) +
                                          R"(,"clusters":1,"entries":2,"head":0,"groups":1})");
      w.add("output_index.centroids", DType::kF32, {1, padded(d)}, std::as_bytes(cen.span()));
      w.add("output_index.offsets", DType::kU32, {2}, std::as_bytes(std::span(offsets)));
      w.add("output_index.labels", DType::kU32, {2}, std::as_bytes(std::span(labels)));
      w.add("output_index.group_centroids", DType::kF32, {1, padded(d)}, std::as_bytes(cen.span()));
      w.add("output_index.group_offsets", DType::kU32, {2}, std::as_bytes(std::span(goffsets)));
    };
    save_model(path, *x.net, x.problem.config, {}, so);
    const std::string e = error_of([&] { (void)OutputIndex::load(path, L, d); });
    CHECK(contains(e, path));
    CHECK(contains(e, "section 'output_index.labels'"));
    CHECK(contains(e, "out of range"));
  }
  SUBCASE("an index of another model") {
    SaveOptions so;
    so.extra_sections = [&](ModelFileWriter& w) { x.index->save(w); };
    save_model(path, *x.net, x.problem.config, {}, so);
    const std::string e = error_of([&] { (void)OutputIndex::load(path, L + 1, d); });
    CHECK(contains(e, "section 'output_index.meta'"));
  }
  SUBCASE("a flipped byte") {
    SaveOptions so;
    so.extra_sections = [&](ModelFileWriter& w) { x.index->save(w); };
    so.zstd_level = -1;
    save_model(path, *x.net, x.problem.config, {}, so);
    const ModelFileReader intact(path);
    const TensorInfo& info = intact.info("output_index.labels");
    (void)info;
    std::ifstream in(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
    // Flip a byte in the last few percent of the file: the index sections are written last.
    bytes[bytes.size() - 64] ^= 0x5A;
    const ModelFileReader reader(std::as_bytes(std::span(bytes)), "damaged.glide");
    const std::string e = error_of([&] { (void)OutputIndex::load(reader, L, d); });
    CHECK(contains(e, "damaged.glide"));
    CHECK(contains(e, "section 'output_index."));
  }
}

TEST_CASE("the index refuses a training set with more features or labels than the model") {
  const Indexed& x = indexed();
  data::Dataset wide = x.problem.data.train;
  wide.num_features = x.net->config().num_features + 1;
  CHECK(contains(error_of([&] { (void)OutputIndex::build(*x.net, wide); }), "features"));
  data::Dataset more_labels = x.problem.data.train;
  more_labels.num_labels = x.net->num_labels() + 1;
  CHECK(contains(error_of([&] { (void)OutputIndex::build(*x.net, more_labels); }), "labels"));
}
