// int8 inference end to end: a model trained here, quantized, keeps its accuracy; the quantized
// file round-trips; the scalar and VNNI paths predict identically; training refuses it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/cpu.h"
#include "common/error.h"
#include "data/synth_xc.h"
#include "engine/checkpoint.h"
#include "engine/fit.h"
#include "engine/model_file.h"
#include "engine/predictor.h"
#include "engine/tests/output_storage.h"
#include "engine/tests/small_problem.h"
#include "engine/trainer.h"

using namespace glide;
using namespace glide::engine;
using glide::engine::testing::int8_rows;

namespace {

std::string temp_path(const std::string& name) {
  return testing::temp_path("glide_quant_e2e", name);
}

struct Trained : testing::SmallProblem {
  std::unique_ptr<Network> net;
  Trained() : SmallProblem(3) {
    net = std::make_unique<Network>(config.net);
    Trainer trainer(*net, config.train,
                    make_lsh_sampler(config.net, config.train, net->output->rows_f32(), true));
    fit(*net, trainer, data.train, config.train, {});
  }
};

const Trained& trained() {
  static const Trained t;
  return t;
}

std::vector<data::SparseView> test_inputs(const data::Dataset& ds, std::size_t n) {
  std::vector<data::SparseView> v;
  for (std::size_t i = 0; i < std::min(n, ds.num_points()); ++i) v.push_back(ds.features(i));
  return v;
}

}  // namespace

TEST_CASE("int8 output layer: P@1 within 0.005 of fp32, same top-1 on most points") {
  const Trained& t = trained();
  Network q = *t.net;
  quantize_output(q, quant::Granularity::kRow);
  CHECK(q.output->precision() == Precision::kInt8);
  // only the s8 rows and their scales are left
  CHECK(q.output->weight_bytes() ==
        std::size_t{q.num_labels()} * (QuantizedRows::stride_for(q.last_hidden()) + sizeof(float)));
  const EvalResult f = evaluate(*t.net, t.data.test, EvalMode::kExact, nullptr);
  const EvalResult e = evaluate(q, t.data.test, EvalMode::kExact, nullptr);
  MESSAGE("exact P@1 fp32 " << f.precision[0] << ", int8 " << e.precision[0] << "; P@5 fp32 "
                            << f.precision[4] << ", int8 " << e.precision[4]);
  REQUIRE(f.precision[0] >= 0.3);  // a model worth quantizing
  CHECK(std::fabs(e.precision[0] - f.precision[0]) <= 0.005);
  CHECK(std::fabs(e.precision[4] - f.precision[4]) <= 0.01);
  const auto inputs = test_inputs(t.data.test, 1000);
  std::vector<Prediction> a, b;
  predict_topk(*t.net, inputs, 5, EvalMode::kExact, nullptr, a);
  predict_topk(q, inputs, 5, EvalMode::kExact, nullptr, b);
  std::size_t same = 0;
  double max_prob_diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    same += a[i].labels[0] == b[i].labels[0];
    if (a[i].labels[0] == b[i].labels[0])
      max_prob_diff = std::max<double>(max_prob_diff, std::fabs(a[i].scores[0] - b[i].scores[0]));
  }
  MESSAGE("same top-1 on " << same << " of " << a.size() << "; max top-1 probability change "
                           << max_prob_diff);
  CHECK(same >= 0.97 * a.size());
  CHECK(max_prob_diff < 0.05);

  // Tensor granularity works too (less precise: one scale for every row).
  Network qt = *t.net;
  quantize_output(qt, quant::Granularity::kTensor);
  const EvalResult et = evaluate(qt, t.data.test, EvalMode::kExact, nullptr);
  MESSAGE("exact P@1 int8 per-tensor " << et.precision[0]);
  CHECK(et.precision[0] >= f.precision[0] - 0.05);
  CHECK_THROWS_AS(quantize_output(q, quant::Granularity::kRow), Error);
}

TEST_CASE("the scalar and VNNI int8 paths score identically") {
  const Trained& t = trained();
  Network q = *t.net;
  quantize_output(q, quant::Granularity::kRow);
  const auto inputs = test_inputs(t.data.test, 37);
  HiddenActivations acts;
  q.forward_hidden(inputs, acts, kernels());
  const OutputMatrix* scorer = q.output.get();
  REQUIRE(scorer->precision() == Precision::kInt8);
  const std::size_t B = inputs.size(), N = scorer->rows();
  auto score_all = [&] {
    ScorerBatch batch;
    scorer->prepare(acts.layers.back().data(), acts.strides.back(), B, q.output_bias.w.data(),
                    batch);
    std::vector<float> block(B * N), rows(B * N);
    scorer->score_block(batch, 0, static_cast<std::uint32_t>(N), block.data(), N);
    std::vector<std::uint32_t> ids(N);
    for (std::uint32_t j = 0; j < N; ++j) ids[j] = j;
    for (std::size_t s = 0; s < B; ++s) scorer->score_rows(batch, s, ids.data(), N, &rows[s * N]);
    CHECK(block == rows);  // the block and the per-row kernels agree bit for bit
    return block;
  };
  const std::vector<float> fast = score_all();
  const Isa before = active_isa();
  REQUIRE(set_active_isa(Isa::kScalar));
  const std::vector<float> slow = score_all();
  // The whole pipeline on the scalar path (a CPU without VNNI) gives the same top labels.
  std::vector<Prediction> a, b;
  predict_topk(q, inputs, 5, EvalMode::kExact, nullptr, b);
  set_active_isa(before);
  predict_topk(q, inputs, 5, EvalMode::kExact, nullptr, a);
  CHECK(fast == slow);
  for (std::size_t i = 0; i < B; ++i) {
    CHECK(a[i].labels == b[i].labels);
    for (std::size_t r = 0; r < a[i].scores.size(); ++r)
      CHECK(a[i].scores[r] == doctest::Approx(b[i].scores[r]).epsilon(1e-4));
  }
}

TEST_CASE("a quantized model file round-trips and serves exact and sampled predictions") {
  const Trained& t = trained();
  const std::string fp32 = temp_path("model.glide"), int8 = temp_path("model.int8.glide");
  save_model(fp32, *t.net, t.config, {6000, 1}, {.optimizer_state = false});
  Network q = *t.net;
  quantize_output(q, quant::Granularity::kRow);
  save_model(int8, q, t.config, {6000, 1});
  {
    ModelFileReader r(int8);
    CHECK(r.info("output.weight").dtype == DType::kI8);
    CHECK(r.info("output.weight_scale").dtype == DType::kF32);
    CHECK(r.info("output.weight_scale").shape ==
          std::vector<std::uint64_t>{t.config.net.num_labels});
    CHECK(!r.has("output.adam_m"));
    CHECK(r.read_json("state").find("\"precision\":\"int8\"") != std::string::npos);
  }
  MESSAGE("file bytes fp32 " << std::filesystem::file_size(fp32) << ", int8 "
                             << std::filesystem::file_size(int8));
  CHECK(std::filesystem::file_size(int8) < std::filesystem::file_size(fp32));

  const InferenceModel loaded(int8, /*lsh=*/true);
  CHECK(loaded.network().output->precision() == Precision::kInt8);
  CHECK(to_json(loaded.config()) == to_json(t.config));
  const auto inputs = test_inputs(t.data.test, 200);
  std::vector<Prediction> a, b;
  predict_topk(q, inputs, 5, EvalMode::kExact, nullptr, a);
  loaded.predict(inputs, 5, EvalMode::kExact, b);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].labels == b[i].labels);
    CHECK(a[i].scores == b[i].scores);
  }
  // Sampled mode: LSH tables built from the dequantized rows.
  auto lsh = make_inference_lsh_sampler(t.config, loaded.network());
  const EvalResult es = evaluate(loaded.network(), t.data.test, EvalMode::kSampled, lsh.get());
  MESSAGE("int8 sampled P@1 " << es.precision[0] << " scoring " << es.mean_scored);
  CHECK(es.precision[0] >= 0.1);
  CHECK(es.mean_scored < 0.1 * t.config.net.num_labels);

  // Saving the loaded int8 model again gives the same weights.
  const std::string again = temp_path("again.int8.glide");
  save_model(again, loaded.network(), loaded.config(), {6000, 1});
  const LoadedModel m2 = load_model(again);
  REQUIRE(m2.net->output->precision() == Precision::kInt8);
  CHECK(
      std::equal(int8_rows(*m2.net).q.begin(), int8_rows(*m2.net).q.end(), int8_rows(q).q.begin()));
  CHECK(std::equal(int8_rows(*m2.net).scale.begin(), int8_rows(*m2.net).scale.end(),
                   int8_rows(q).scale.begin()));
}

TEST_CASE("loading an int8 model for training fails with a named error") {
  const Trained& t = trained();
  const std::string int8 = temp_path("train.int8.glide");
  Network q = *t.net;
  quantize_output(q, quant::Granularity::kRow);
  save_model(int8, q, t.config, {6000, 1});
  LoadedModel m = load_model(int8, /*optimizer_state=*/true);
  CHECK(!m.has_optimizer_state);
  CHECK_THROWS_WITH_AS(require_trainable(*m.net, int8), doctest::Contains("int8-quantized"), Error);
  CHECK_NOTHROW(require_trainable(*t.net, "fp32"));
}
