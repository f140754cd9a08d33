// `glide bench quant`: fp32 vs bf16 vs int8 output layers of one model on the same test points,
// in one run: exact and LSH-sampled inference latency (batch 1) and throughput (batch 256),
// P@1, top-1 agreement with fp32, output-layer bytes and model file sizes, with ratios against
// fp32 in the same mode.
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/bench_util.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "apps/model_setup.h"
#include "common/cpu.h"
#include "common/error.h"
#include "engine/checkpoint.h"
#include "engine/evaluator.h"
#include "engine/kernels_bf16.h"
#include "quant/int8_kernels.h"

namespace glide::cli {

namespace {

struct QuantRow {
  std::string name, mode;
  double lat_p50_ms = 0, lat_mean_ms = 0, batch_sps = 0, p1 = 0, agree = 0;
  std::size_t layer_bytes = 0, file_bytes = 0;
};

}  // namespace

int bench_quant(int argc, char** argv) {
  cxxopts::Options o("glide bench quant",
                     "fp32 vs bf16 vs int8 output layer: latency (batch 1), throughput (batch "
                     "256), P@1, "
                     "sizes. With no --model, trains a quick model on a synthetic preset.");
  o.add_options()("model", "fp32 model file (.glide)", cxxopts::value<std::string>())(
      "test", "test data for --model", cxxopts::value<std::string>())(
      "preset", "synthetic preset when no --model (default, amazon670k, tiny)",
      cxxopts::value<std::string>()->default_value("default"))(
      "points", "training points of the quick model",
      cxxopts::value<std::uint64_t>()->default_value("20000"))(
      "labels", "labels of the quick model (0: the preset's)",
      cxxopts::value<std::uint32_t>()->default_value("0"))(
      "epochs", "epochs of the quick model", cxxopts::value<double>()->default_value("1"))(
      "eval-points", "test points for P@1 and throughput",
      cxxopts::value<std::size_t>()->default_value("2048"))(
      "latency-points", "batch-1 queries timed",
      cxxopts::value<std::size_t>()->default_value("100"))(
      "threads", "worker threads", cxxopts::value<unsigned>()->default_value("1"))(
      "modes", "inference modes: exact,sampled",
      cxxopts::value<std::string>()->default_value("exact,sampled"))("h,help", "this help");
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            r["threads"].as<unsigned>());
  const auto dir = std::filesystem::temp_directory_path() / "glide_bench_quant";
  std::filesystem::create_directories(dir);

  BenchModel model;
  if (r.count("model")) {
    model = load_bench_model(r["model"].as<std::string>(),
                             r.count("test") ? r["test"].as<std::string>() : "", "test");
    if (model.net->output->precision() != engine::Precision::kF32)
      fail(r["model"].as<std::string>(), "give the fp32 model, not an int8 or bf16 one");
  } else {
    QuickModelSpec spec;
    spec.preset = r["preset"].as<std::string>();
    spec.points = r["points"].as<std::uint64_t>();
    spec.labels = r["labels"].as<std::uint32_t>();
    spec.test_points = r["eval-points"].as<std::size_t>();
    spec.hidden = {128};
    spec.epochs = r["epochs"].as<double>();
    model = make_quick_model(spec);
    const auto t0 = Clock::now();
    train_quick_model(model);
    std::printf(
        "trained a quick model: %s preset, %zu points, %u features, %u labels, hidden "
        "128, %.1f s\n",
        spec.preset.c_str(), model.train.num_points(), model.config.net.num_features,
        model.config.net.num_labels, seconds_since(t0));
  }
  const engine::Config& config = model.config;
  const engine::Network& net = *model.net;
  const data::Dataset& test = model.test;
  std::vector<data::SparseView> inputs;
  for (std::size_t i = 0;
       i < test.num_points() && inputs.size() < r["eval-points"].as<std::size_t>(); ++i)
    if (!test.labels(i).empty()) inputs.push_back(test.features(i));
  if (inputs.empty()) fail("no labelled test points");
  std::printf("cpu: %s; int8 kernels: %s; bf16 kernels: %s; %u thread(s); %zu test points\n\n",
              cpu_summary().c_str(), quant::int8_kernels().name, engine::bf16_kernels().name,
              r["threads"].as<unsigned>(), inputs.size());

  engine::SaveOptions so;
  so.optimizer_state = false;
  std::vector<std::unique_ptr<engine::Network>> nets;
  std::vector<std::string> names{"fp32", "bf16", "int8-row", "int8-tensor"};
  nets.push_back(std::make_unique<engine::Network>(net));
  nets.push_back(std::make_unique<engine::Network>(net));
  engine::output_to_bf16(*nets.back(), /*optimizer=*/false);
  for (auto g : {quant::Granularity::kRow, quant::Granularity::kTensor}) {
    nets.push_back(std::make_unique<engine::Network>(net));
    engine::quantize_output(*nets.back(), g);
  }
  const std::vector<std::string> modes =
      parse_list(r["modes"].as<std::string>(), "modes", [](const std::string& m) {
        return parse_choice(m, {"exact", "sampled"});
      });
  std::vector<QuantRow> rows;
  const std::size_t lat_n = std::min(r["latency-points"].as<std::size_t>(), inputs.size());
  for (const std::string mode : {"exact", "sampled"}) {
    if (std::find(modes.begin(), modes.end(), mode) == modes.end()) continue;
    const engine::EvalMode em =
        mode == "exact" ? engine::EvalMode::kExact : engine::EvalMode::kSampled;
    std::vector<engine::Prediction> ref_preds;
    for (std::size_t v = 0; v < nets.size(); ++v) {
      const engine::Network& n = *nets[v];
      QuantRow row;
      row.name = names[v];
      row.mode = mode;
      row.layer_bytes = n.output->weight_bytes();
      const auto path = (dir / (row.name + ".glide")).string();
      engine::save_model(path, n, config, {}, so);
      row.file_bytes = std::filesystem::file_size(path);
      // Sampled mode: LSH tables over the rows as this storage holds them (expanded to fp32).
      std::unique_ptr<engine::OutputSampler> lsh;
      if (em == engine::EvalMode::kSampled) lsh = make_inference_sampler(config, n);
      // Batch 1 latency: forward + top-5 (over every label in exact mode).
      std::vector<engine::Prediction> out;
      std::vector<double> lat;
      engine::predict_topk(n, std::span(inputs).first(1), 5, em, lsh.get(), out);
      for (std::size_t i = 0; i < lat_n; ++i) {
        const auto t = Clock::now();
        engine::predict_topk(n, std::span(inputs).subspan(i, 1), 5, em, lsh.get(), out);
        lat.push_back(seconds_since(t) * 1e3);
      }
      row.lat_p50_ms = percentile(lat, 0.5);
      for (double l : lat) row.lat_mean_ms += l / lat.size();
      // Batch 256 throughput and P@1 on the same points.
      std::vector<engine::Prediction> preds, batch;
      engine::EvalResult er;
      const auto t = Clock::now();
      for (std::size_t b = 0; b < inputs.size(); b += 256) {
        const auto span =
            std::span(inputs).subspan(b, std::min<std::size_t>(256, inputs.size() - b));
        engine::predict_topk(n, span, 5, em, lsh.get(), batch);
        preds.insert(preds.end(), batch.begin(), batch.end());
      }
      row.batch_sps = inputs.size() / seconds_since(t);
      std::size_t q = 0;
      for (std::size_t i = 0; i < test.num_points() && q < preds.size(); ++i)
        if (!test.labels(i).empty()) engine::accumulate_metrics(preds[q++], test.labels(i), er);
      row.p1 = er.precision[0] / er.points;
      if (v == 0) ref_preds = preds;
      std::size_t same = 0;
      for (std::size_t i = 0; i < preds.size(); ++i)
        same += preds[i].labels.empty() || ref_preds[i].labels.empty()
                    ? preds[i].labels.empty() == ref_preds[i].labels.empty()
                    : preds[i].labels[0] == ref_preds[i].labels[0];
      row.agree = static_cast<double>(same) / preds.size();
      rows.push_back(row);
    }
  }
  std::printf("%-12s %-8s %9s %9s %8s %11s %8s %7s %8s %9s %7s %9s %7s\n", "weights", "mode",
              "b1 p50 ms", "b1 mean", "speedup", "b256 pts/s", "speedup", "P@1", "top1=fp32",
              "layer MB", "ratio", "file MB", "ratio");
  for (const QuantRow& x : rows) {
    const QuantRow* f = &x;  // fp32 in the same mode
    for (const QuantRow& y : rows)
      if (y.mode == x.mode && y.name == "fp32") f = &y;
    std::printf(
        "%-12s %-8s %9.3f %9.3f %7.2fx %11.0f %7.2fx %7.4f %8.1f%% %9.2f %6.2fx %9.2f %6.2fx\n",
        x.name.c_str(), x.mode.c_str(), x.lat_p50_ms, x.lat_mean_ms, f->lat_p50_ms / x.lat_p50_ms,
        x.batch_sps, x.batch_sps / f->batch_sps, x.p1, 100 * x.agree, x.layer_bytes / 1e6,
        static_cast<double>(f->layer_bytes) / x.layer_bytes, x.file_bytes / 1e6,
        static_cast<double>(f->file_bytes) / x.file_bytes);
  }
  std::printf(
      "\nexact mode: every label scored (forward + top-5); sampled: the labels the LSH tables "
      "return. Hidden layers fp32 in every variant; bf16 = bf16 weights x fp32 activations "
      "(rounded to nearest from fp32); int8 = s8 weights x u8 activations (zero point 0), VNNI "
      "when present. Speedups and ratios against fp32 in the same mode.\n");
  return 0;
}

}  // namespace glide::cli
