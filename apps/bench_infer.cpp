// `glide bench infer`: the ways of answering top-k for one model on the same test points, in one
// run: exact fp32, exact int8, the LSH tables over the output rows, and the output index at
// several probes (fp32 and int8 rows). P@1, P@5, recall@5 against exact fp32, labels scored,
// batch-1 latency and batch-256 throughput, with speed-ups against exact fp32.
#include <tbb/global_control.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/bench_util.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "common/cpu.h"
#include "common/error.h"
#include "common/timing.h"
#include "data/dataset_io.h"
#include "engine/evaluator.h"
#include "engine/index_predictor.h"
#include "engine/output_index.h"
#include "engine/output_matrix.h"
#include "quant/int8_kernels.h"

namespace glide::cli {

namespace {

struct InferRow {
  std::string name;
  engine::EvalResult eval;
  double p50_ms = 0, build_s = 0;
};

// Batch-1 latency: each of the first `n` inputs predicted alone (top 5).
double latency_p50_ms(const engine::Predictor& p, std::span<const data::SparseView> inputs,
                      std::size_t n, const engine::SearchParams& params) {
  std::vector<engine::Prediction> out;
  std::vector<double> ms;
  p.predict(inputs.first(1), 5, out, params);  // warm-up
  for (std::size_t i = 0; i < std::min(n, inputs.size()); ++i) {
    const auto t = Clock::now();
    p.predict(inputs.subspan(i, 1), 5, out, params);
    ms.push_back(seconds_since(t) * 1e3);
  }
  return percentile(ms, 0.5);
}

}  // namespace

int bench_infer(int argc, char** argv) {
  cxxopts::Options o("glide bench infer",
                     "exact fp32 / int8 vs LSH tables vs the output index: P@k, recall against "
                     "exact, labels scored, batch-1 latency, batch-256 throughput. With no "
                     "--model, trains a quick model on a synthetic preset.");
  o.add_options()("model", "fp32 model file (.glide)", cxxopts::value<std::string>())(
      "train", "training data of --model (builds the index when the file has none)",
      cxxopts::value<std::string>())("test", "test data for --model",
                                     cxxopts::value<std::string>())(
      "preset", "synthetic preset when no --model (default, amazon670k, tiny)",
      cxxopts::value<std::string>()->default_value("default"))(
      "points", "training points of the quick model (0: the preset's)",
      cxxopts::value<std::uint64_t>()->default_value("0"))(
      "epochs", "epochs of the quick model", cxxopts::value<double>()->default_value("1"))(
      "sampling", "output sampling of the quick model's training: lsh or random",
      cxxopts::value<std::string>()->default_value("lsh"))(
      "eval-points", "test points for P@k and throughput",
      cxxopts::value<std::size_t>()->default_value("2000"))(
      "latency-points", "batch-1 queries timed per row",
      cxxopts::value<std::size_t>()->default_value("200"))(
      "probes", probes_help("a row each (comma list)"),
      cxxopts::value<std::string>()->default_value("2,4,8,16,32"))(
      "threads", "worker threads", cxxopts::value<unsigned>()->default_value("1"))("h,help",
                                                                                   "this help");
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  const std::vector<std::uint32_t> probes = parse_probes_list(r["probes"].as<std::string>());
  const std::string sampling = parse_choice(r["sampling"].as<std::string>(), {"lsh", "random"});
  const unsigned threads = r["threads"].as<unsigned>();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);

  BenchModel model;
  std::shared_ptr<const engine::OutputIndex> index;
  double index_s = 0;
  if (r.count("model")) {
    const std::string path = r["model"].as<std::string>();
    model = load_bench_model(path, r.count("test") ? r["test"].as<std::string>() : "", "test");
    if (model.net->output->precision() != engine::Precision::kF32)
      fail(path, "give the fp32 model, not an int8 or bf16 one");
    index = engine::OutputIndex::load(path, model.net->num_labels(), model.net->output->cols());
    if (!index && !r.count("train")) fail("--model has no output index: give --train DATA");
    if (r.count("train")) model.train = data::read_dataset(r["train"].as<std::string>());
  } else {
    QuickModelSpec spec;
    spec.preset = r["preset"].as<std::string>();
    spec.points = r["points"].as<std::uint64_t>();
    spec.test_points = r["eval-points"].as<std::size_t>();
    spec.epochs = r["epochs"].as<double>();
    spec.sampling =
        sampling == "lsh" ? engine::OutputSampling::kLsh : engine::OutputSampling::kRandom;
    model = make_quick_model(spec);
    const auto t0 = Clock::now();
    train_quick_model(model);
    std::printf(
        "quick model: %s preset, %zu training points, %u features, %u labels, hidden 128, "
        "%.1f epochs (%s), trained in %.1f s\n",
        spec.preset.c_str(), model.train.num_points(), model.config.net.num_features,
        model.config.net.num_labels, spec.epochs, sampling.c_str(), seconds_since(t0));
  }
  if (!index) {
    const auto t0 = Clock::now();
    index = engine::OutputIndex::build(*model.net, model.train);
    index_s = seconds_since(t0);
  }
  const std::shared_ptr<const engine::Network> fp32 = std::move(model.net);
  auto int8_copy = std::make_shared<engine::Network>(*fp32);
  engine::quantize_output(*int8_copy, quant::Granularity::kRow);
  const std::shared_ptr<const engine::Network> int8_net = std::move(int8_copy);
  const std::uint32_t labels = fp32->num_labels();
  const data::Dataset& test = model.test;
  std::vector<data::SparseView> inputs;
  for (std::size_t i = 0; i < test.num_points(); ++i)
    if (!test.labels(i).empty()) inputs.push_back(test.features(i));
  const std::size_t eval_n = std::min(r["eval-points"].as<std::size_t>(), test.num_points());
  const std::size_t lat_n = r["latency-points"].as<std::size_t>();
  std::printf("cpu: %s; int8 kernels: %s; %u thread(s); %zu test points; %u labels\n",
              cpu_summary().c_str(), quant::int8_kernels().name, threads,
              std::min(eval_n, inputs.size()), labels);
  std::printf("output index: %u clusters in %u groups, %u head labels, %.1f MB%s\n\n",
              index->clusters(), index->groups(), static_cast<unsigned>(index->head().size()),
              index->bytes() / 1e6,
              index_s > 0 ? (", built in " + std::to_string(index_s).substr(0, 5) + " s").c_str()
                          : " (from the model file)");

  engine::TopLabels exact_top;
  std::vector<InferRow> rows;
  const auto measure = [&](const std::string& name, const engine::Predictor& p,
                           const engine::SearchParams& params, double build_s) {
    engine::EvalOptions eo;
    eo.max_points = eval_n;
    eo.search = params;
    eo.reference = exact_top.empty() ? nullptr : &exact_top;
    eo.top_out = exact_top.empty() ? &exact_top : nullptr;
    InferRow row{name, engine::evaluate(p, test, eo), latency_p50_ms(p, inputs, lat_n, params),
                 build_s};
    rows.push_back(row);
    std::fprintf(stderr, "  measured %s\n", name.c_str());
  };
  engine::PredictOptions po;
  measure("exact fp32", *engine::make_predictor(fp32, model.config, po), {}, 0);
  measure("exact int8", *engine::make_predictor(int8_net, model.config, po), {}, 0);
  po.mode = engine::EvalMode::kSampled;
  po.search = engine::SampledSearch::kLsh;
  {
    const auto t0 = Clock::now();
    const auto lsh = engine::make_predictor(fp32, model.config, po);
    measure("LSH tables fp32", *lsh, {}, seconds_since(t0));
  }
  po.search = engine::SampledSearch::kIndex;
  po.index = index;
  // int8 rows at one setting: the default when listed, else the last.
  const std::uint32_t int8_probes =
      std::find(probes.begin(), probes.end(), engine::OutputIndex::kDefaultProbes) != probes.end()
          ? engine::OutputIndex::kDefaultProbes
          : probes.back();
  for (const auto& [name, net] : {std::pair{"fp32", fp32}, std::pair{"int8", int8_net}}) {
    const auto p = engine::make_predictor(net, model.config, po);
    for (const std::uint32_t pr : probes) {
      if (std::string(name) == "int8" && pr != int8_probes) continue;
      engine::SearchParams sp;
      sp.probes = pr;
      measure(std::string("index ") + name + " probes " + std::to_string(pr), *p, sp, 0);
    }
  }

  const InferRow& base = rows.front();
  std::printf("%-24s %7s %7s %9s %10s %8s %10s %8s %12s %8s %9s\n", "method", "P@1", "P@5",
              "recall@5", "scored", "% labels", "b1 p50 ms", "speedup", "b256 pts/s", "speedup",
              "build s");
  for (const InferRow& x : rows) {
    const double pts = x.eval.seconds > 0 ? x.eval.points / x.eval.seconds : 0;
    const double base_pts = base.eval.points / base.eval.seconds;
    std::printf("%-24s %7.4f %7.4f %9.4f %10.0f %7.2f%% %10.3f %7.1fx %12.0f %7.1fx %9.2f\n",
                x.name.c_str(), x.eval.precision[0], x.eval.precision[4],
                &x == &base ? 1.0 : x.eval.recall[4], x.eval.mean_scored,
                100 * x.eval.mean_scored / labels, x.p50_ms, base.p50_ms / x.p50_ms, pts,
                pts / base_pts, x.build_s);
  }
  std::printf(
      "\nrecall@5: share of exact fp32's top 5 in the row's top 5. scored: labels scored per point "
      "(exact: all). b1: one point per call (forward + top-5); b256: batches of 256 (P@k from the "
      "same calls). The index's candidates are scored by the rows of its storage (fp32 or int8). "
      "Speed-ups against exact fp32 in this run.\n");
  return 0;
}

}  // namespace glide::cli
