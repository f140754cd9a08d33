// bf16 training and inference end to end on the small planted problem: every precision mode
// learns it about as well as fp32; bf16 models round-trip through files bit for bit, resume
// exactly, and score like the fp32 reference within bf16 tolerance.
#include <doctest/doctest.h>

#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "engine/checkpoint.h"
#include "engine/fit.h"
#include "engine/model_file.h"
#include "engine/predictor.h"
#include "engine/tests/output_storage.h"
#include "engine/tests/small_problem.h"
#include "engine/trainer.h"

using namespace glide;
using namespace glide::engine;
using glide::engine::testing::bf16_rows;

namespace {

std::string temp_path(const std::string& name) {
  return testing::temp_path("glide_bf16_e2e", name);
}

std::unique_ptr<OutputSampler> sampler_for(const Config& c, const Network& net) {
  if (c.net.sampling == OutputSampling::kRandom)
    return make_random_sampler(net.num_labels(), sampling_budget(net.num_labels(), c.net.sparsity),
                               c.train.seed);
  return make_lsh_sampler(c.net, c.train, net.output->rows_f32(), true);
}

struct Trained {
  testing::SmallProblem problem{3};
  std::map<std::string, std::unique_ptr<Network>> nets;  // by precision mode
  std::map<std::string, double> p1;
  Trained() {
    for (const char* mode : {"fp32", "bf16-act", "bf16", "bf16-w"}) {
      Config c = problem.config;
      c.train.precision = parse_enum<TrainPrecision>(mode, "mode");
      auto net = std::make_unique<Network>(c.net);
      Trainer trainer(*net, c.train, sampler_for(c, *net));
      fit(*net, trainer, problem.data.train, c.train, {});
      p1[mode] = evaluate(*net, problem.data.test, EvalMode::kExact, nullptr).precision[0];
      nets[mode] = std::move(net);
    }
  }
};

const Trained& trained() {
  static const Trained t;
  return t;
}

// P@1 of always predicting the most frequent training label.
double most_frequent_p1(const data::TrainTest& d) {
  std::vector<std::size_t> count(d.train.num_labels, 0);
  for (std::size_t i = 0; i < d.train.num_points(); ++i)
    for (std::uint32_t y : d.train.labels(i)) ++count[y];
  const std::uint32_t top =
      static_cast<std::uint32_t>(std::max_element(count.begin(), count.end()) - count.begin());
  std::size_t hits = 0;
  for (std::size_t i = 0; i < d.test.num_points(); ++i) {
    const auto ls = d.test.labels(i);
    hits += std::find(ls.begin(), ls.end(), top) != ls.end();
  }
  return static_cast<double>(hits) / d.test.num_points();
}

std::vector<data::SparseView> test_inputs(const data::Dataset& ds, std::size_t n) {
  std::vector<data::SparseView> v;
  for (std::size_t i = 0; i < std::min(n, ds.num_points()); ++i) v.push_back(ds.features(i));
  return v;
}

}  // namespace

TEST_CASE("bf16 training modes reach fp32's P@1 within 0.03, far above the trivial baseline") {
  const Trained& t = trained();
  const double base = most_frequent_p1(t.problem.data);
  MESSAGE("P@1 fp32 " << t.p1.at("fp32") << ", bf16-act " << t.p1.at("bf16-act") << ", bf16 "
                      << t.p1.at("bf16") << ", bf16-w " << t.p1.at("bf16-w")
                      << "; most frequent label " << base);
  REQUIRE(t.p1.at("fp32") >= 0.3);
  for (const std::string mode : {"bf16-act", "bf16", "bf16-w"}) {
    CAPTURE(mode);
    CHECK(t.p1.at(mode) >= t.p1.at("fp32") - 0.03);
    CHECK(t.p1.at(mode) >= 5 * base);
  }
  // The storage each mode leaves behind.
  CHECK(t.nets.at("bf16-act")->output->precision() == Precision::kF32);
  const Network& b = *t.nets.at("bf16");
  CHECK(b.output->precision() == Precision::kBF16);
  CHECK(b.output->weight_bytes() == std::size_t{b.num_labels()} * b.last_hidden() * 2);
  CHECK(!bf16_rows(b).m.empty());
  CHECK(bf16_rows(b).mf.empty());
  const Network& w = *t.nets.at("bf16-w");
  CHECK(w.output->precision() == Precision::kBF16);
  CHECK(bf16_rows(w).m.empty());
  CHECK(!bf16_rows(w).mf.empty());
}

TEST_CASE("the bf16 scorer equals the fp32 scorer on the expanded rows within fp32 rounding") {
  const Network& b = *trained().nets.at("bf16");
  Network f = b;  // the same values in fp32
  output_to_f32(f);
  REQUIRE(f.output->precision() == Precision::kF32);
  const auto inputs = test_inputs(trained().problem.data.test, 37);
  HiddenActivations acts;
  b.forward_hidden(inputs, acts, kernels());
  const std::size_t B = inputs.size(), N = b.num_labels();
  auto scores = [&](const Network& net, bool per_row) {
    const OutputMatrix* scorer = net.output.get();
    ScorerBatch batch;
    scorer->prepare(acts.layers.back().data(), acts.strides.back(), B, net.output_bias.w.data(),
                    batch);
    std::vector<float> out(B * N);
    if (!per_row) {
      scorer->score_block(batch, 0, static_cast<std::uint32_t>(N), out.data(), N);
    } else {
      std::vector<std::uint32_t> ids(N);
      for (std::uint32_t j = 0; j < N; ++j) ids[j] = j;
      for (std::size_t s = 0; s < B; ++s) scorer->score_rows(batch, s, ids.data(), N, &out[s * N]);
    }
    return out;
  };
  CHECK(b.output->precision() == Precision::kBF16);
  CHECK(b.output->weight_bytes() * 2 == f.output->weight_bytes());
  const auto ref = scores(f, false), blk = scores(b, false), row = scores(b, true);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    CHECK(std::fabs(blk[i] - ref[i]) <= 1e-4f * (1 + std::fabs(ref[i])));
    CHECK(std::fabs(row[i] - ref[i]) <= 1e-4f * (1 + std::fabs(ref[i])));
  }
}

TEST_CASE("a bf16 model file round-trips bit for bit and predicts identically") {
  const Trained& t = trained();
  const Network& f = *t.nets.at("fp32");
  const auto f_lsh = make_inference_lsh_sampler(t.problem.config, f);
  const double f_sampled =
      evaluate(f, t.problem.data.test, EvalMode::kSampled, f_lsh.get()).precision[0];
  for (const std::string mode : {"bf16", "bf16-w"}) {
    CAPTURE(mode);
    const Network& b = *t.nets.at(mode);
    Config c = t.problem.config;
    c.train.precision = parse_enum<TrainPrecision>(mode, "mode");
    const std::string path = temp_path(mode + ".glide");
    save_model(path, b, c, {6000, 1});
    {
      ModelFileReader r(path);
      CHECK(r.info("output.weight").dtype == DType::kBF16);
      CHECK(r.info("output.adam_m").dtype == (mode == "bf16" ? DType::kBF16 : DType::kF32));
      CHECK(r.read_json("state").find("\"precision\":\"bf16\"") != std::string::npos);
    }
    const LoadedModel m = load_model(path);
    REQUIRE(m.has_optimizer_state);
    const Bf16Rows &x = bf16_rows(b), &y = bf16_rows(*m.net);
    REQUIRE(y.rows == x.rows);
    CHECK(std::equal(x.w.begin(), x.w.end(), y.w.begin(), y.w.end()));
    CHECK(std::equal(x.m.begin(), x.m.end(), y.m.begin(), y.m.end()));
    CHECK(std::equal(x.v.begin(), x.v.end(), y.v.begin(), y.v.end()));
    CHECK(std::equal(x.mf.begin(), x.mf.end(), y.mf.begin(), y.mf.end()));
    CHECK(std::equal(x.vf.begin(), x.vf.end(), y.vf.begin(), y.vf.end()));
    const InferenceModel loaded(path, /*lsh=*/true);
    const auto inputs = test_inputs(t.problem.data.test, 200);
    for (EvalMode em : {EvalMode::kExact, EvalMode::kSampled}) {
      CAPTURE(em == EvalMode::kExact);
      std::vector<Prediction> p, q;
      auto lsh = make_inference_lsh_sampler(c, b);
      predict_topk(b, inputs, 5, em, em == EvalMode::kSampled ? lsh.get() : nullptr, p);
      loaded.predict(inputs, 5, em, q);
      REQUIRE(p.size() == q.size());
      for (std::size_t i = 0; i < p.size(); ++i) {
        CHECK(p[i].labels == q[i].labels);
        // (the softmax normalizer is summed in parallel: its last bits may differ run to run)
        for (std::size_t r = 0; r < p[i].scores.size(); ++r)
          CHECK(p[i].scores[r] == doctest::Approx(q[i].scores[r]).epsilon(1e-5));
      }
    }
    const EvalResult es = evaluate(loaded.predictor(EvalMode::kSampled), t.problem.data.test);
    MESSAGE(mode << " sampled P@1 " << es.precision[0] << " scoring " << es.mean_scored
                 << " (fp32 sampled " << f_sampled << ")");
    CHECK(es.precision[0] >= f_sampled - 0.05);
    CHECK(es.mean_scored < 0.1 * t.problem.config.net.num_labels);
  }
}

TEST_CASE("an fp32 model converted to bf16 for inference keeps its P@1 within 0.01") {
  const Trained& t = trained();
  Network b = *t.nets.at("fp32");
  output_to_bf16(b, /*optimizer=*/false);
  CHECK(b.output->precision() == Precision::kBF16);
  CHECK(!b.output->has_optimizer_state());
  const double p = evaluate(b, t.problem.data.test, EvalMode::kExact, nullptr).precision[0];
  MESSAGE("fp32 P@1 " << t.p1.at("fp32") << ", as bf16 " << p);
  CHECK(std::fabs(p - t.p1.at("fp32")) <= 0.01);
  CHECK_THROWS_AS(output_to_bf16(b, false), Error);
  // Its file has no optimizer state and is about half the fp32 output layer's size.
  const std::string path = temp_path("inference.bf16.glide");
  save_model(path, b, t.problem.config, {6000, 1});
  ModelFileReader r(path);
  CHECK(!r.has("output.adam_m"));
  CHECK(r.info("output.weight").raw_bytes * 2 ==
        std::size_t{b.num_labels()} * padded(b.last_hidden()) * 4);
}

TEST_CASE("resumed bf16 training continues exactly as uninterrupted training (1 thread)") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  testing::SmallProblem f(1.5);
  Config c = f.config;
  c.net.sampling = OutputSampling::kRandom;
  c.train.precision = TrainPrecision::kBF16;
  // Interrupted after 35 batches, as a Ctrl-C checkpoint is.
  const testing::ResumeRuns runs =
      testing::run_full_and_resumed(c, f.data.train, temp_path("resume.bf16.glide"));
  const Network &full = *runs.full, *resumed = runs.resumed.net.get();
  REQUIRE(resumed->output->precision() == Precision::kBF16);
  CHECK(runs.resumed_end.samples == runs.full_end.samples);
  CHECK(resumed->step == full.step);
  const Bf16Rows &x = bf16_rows(full), &y = bf16_rows(*resumed);
  CHECK(std::equal(x.w.begin(), x.w.end(), y.w.begin(), y.w.end()));
  CHECK(std::equal(x.m.begin(), x.m.end(), y.m.begin(), y.m.end()));
  CHECK(std::equal(x.v.begin(), x.v.end(), y.v.begin(), y.v.end()));
  CHECK(std::equal(full.input.w.begin(), full.input.w.end(), resumed->input.w.begin()));
}

TEST_CASE("a model whose bf16 sections are damaged fails to load naming the section") {
  const Trained& t = trained();
  // Rewrite a bf16 model with output.weight as f32 values of the wrong dtype.
  const std::string good = temp_path("good.bf16.glide"), bad = temp_path("bad.bf16.glide");
  save_model(good, *t.nets.at("bf16"), t.problem.config, {6000, 1});
  ModelFileReader r(good);
  std::vector<std::vector<std::byte>> keep;
  ModelFileWriter w(bad);
  for (const TensorInfo& info : r.sections()) {
    keep.push_back(r.read_bytes(info.name));
    if (info.name == "output.weight") {
      w.add(info.name, DType::kI8, {info.shape[0], info.shape[1] * 2}, keep.back());
    } else if (info.dtype == DType::kJson) {
      w.add_json(info.name, r.read_json(info.name));
    } else {
      w.add(info.name, info.dtype, info.shape, keep.back());
    }
  }
  w.commit();
  CHECK_THROWS_WITH_AS(load_model(bad), doctest::Contains("'output.weight' has dtype i8"), Error);
}
