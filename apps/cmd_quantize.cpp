// `glide quantize`: an fp32 model to an int8 inference model (output layer as s8 rows with a
// scale per row or one per tensor) or, with --to bf16, to a bf16 one (rounded to nearest even);
// hidden layers stay fp32; no optimizer state. Learned caches (cache/) are kept with their
// thresholds reset (see below); the output index is kept as it is.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <cxxopts.hpp>

#include "apps/commands.h"
#include "cache/cache_file.h"
#include "common/error.h"
#include "common/file_util.h"
#include "engine/checkpoint.h"
#include "engine/output_index.h"
#include "engine/output_weights.h"

namespace glide::cli {

int cmd_quantize(int argc, char** argv) {
  cxxopts::Options o("glide quantize",
                     "Quantize a model's output layer to int8 or bf16 for inference (eval, "
                     "predict and serve load it like any model; an int8 one cannot be trained "
                     "further).");
  o.add_options()("model", "fp32 model file (.glide)", cxxopts::value<std::string>())(
      "o,output", "int8 model file to write", cxxopts::value<std::string>())(
      "to", "int8 or bf16", cxxopts::value<std::string>()->default_value("int8"))(
      "granularity", "int8 weight scales: row (one per output neuron) or tensor",
      cxxopts::value<std::string>()->default_value("row"))(
      "zstd-level", "compression level of the file", cxxopts::value<int>()->default_value("3"))(
      "caches", "the model's learned caches: keep (thresholds reset) or drop",
      cxxopts::value<std::string>()->default_value("keep"))("h,help", "this help");
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  if (!r.unmatched().empty()) fail("unexpected argument '" + r.unmatched()[0] + "'");
  if (!r.count("model")) fail("--model FILE is required");
  if (!r.count("output")) fail("-o FILE is required");
  const std::string in = r["model"].as<std::string>(), out = r["output"].as<std::string>();
  std::error_code same_error;
  if (std::filesystem::equivalent(in, out, same_error))
    fail(out + " (-o)",
         "is the input model: quantizing in place would replace the fp32 model and its "
         "optimizer state; write to another file");
  check_writable(out, "-o");
  const quant::Granularity g = quant::parse_granularity(r["granularity"].as<std::string>());
  const std::string to = r["to"].as<std::string>();
  if (to != "int8" && to != "bf16") fail("--to must be int8 or bf16, got '" + to + "'");
  const std::string caches_flag = r["caches"].as<std::string>();
  if (caches_flag != "keep" && caches_flag != "drop")
    fail("--caches must be keep or drop, got '" + caches_flag + "'");

  const auto t0 = std::chrono::steady_clock::now();
  engine::LoadedModel m = engine::load_model(in, /*optimizer_state=*/false);
  if (m.net->output->precision() != engine::Precision::kF32)
    fail(in, std::string("is already quantized (precision ") +
                 engine::precision_name(m.net->output->precision()) + ")");
  // The worst weight error relative to its row's largest weight, for the summary.
  const engine::ParamMatrix fp32 = m.net->output->to_f32();
  if (to == "bf16")
    engine::output_to_bf16(*m.net, /*optimizer=*/false);
  else
    engine::quantize_output(*m.net, g);
  const engine::ParamMatrix deq = m.net->output->to_f32();
  double max_err = 0, sum_sq_err = 0, sum_sq = 0;
  for (std::uint32_t j = 0; j < fp32.rows; ++j)
    for (std::uint32_t c = 0; c < fp32.cols; ++c) {
      const double w = fp32.row(j)[c], e = w - deq.row(j)[c];
      max_err = std::max(max_err, std::fabs(e));
      sum_sq_err += e * e;
      sum_sq += w * w;
    }
  engine::SaveOptions so;
  so.optimizer_state = false;
  so.zstd_level = r["zstd-level"].as<int>();
  // The hidden layers are unchanged, so the caches' rows, hot sets and counts still describe
  // their activations; but the quantized output layer can rank labels differently, so the
  // thresholds calibrated against the fp32 answers certify nothing: they restart at 1 - 1e-6
  // and a server's calibration lowers them from its first misses (docs/caches.md).
  cache::CacheStates caches;
  if (caches_flag == "keep") caches = cache::read_caches(in, m.config.net);
  for (auto& [layer, st] : caches) st.threshold = 1 - 1e-6;
  cache::CacheSectionWriter sections;
  // The output index proposes candidates; the quantized rows score them, so it carries over.
  const auto index = engine::OutputIndex::load(in, m.net->output->rows(), m.net->output->cols());
  so.extra_sections = [&](engine::ModelFileWriter& w) {
    if (!caches.empty()) sections.add(w, caches);
    if (index) index->save(w);
  };
  engine::save_model(out, *m.net, m.config, m.state, so);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto in_bytes = std::filesystem::file_size(in), out_bytes = std::filesystem::file_size(out);
  if (to == "bf16")
    std::printf("quantized %s -> %s (output layer %u x %u to bf16; hidden layers fp32)\n",
                in.c_str(), out.c_str(), fp32.rows, fp32.cols);
  else
    std::printf(
        "quantized %s -> %s (output layer %u x %u to int8, %s scales; hidden layers fp32)\n",
        in.c_str(), out.c_str(), fp32.rows, fp32.cols, quant::granularity_name(g));
  if (!caches.empty()) {
    std::string layers;
    for (const auto& [layer, st] : cache::read_caches(out, m.config.net))
      layers += (layers.empty() ? "" : ",") + std::to_string(layer);
    std::printf("learned caches kept on hidden layers %s (thresholds reset)\n", layers.c_str());
  }
  std::printf("weight error: max %.3g, relative RMS %.3g\n", max_err,
              sum_sq > 0 ? std::sqrt(sum_sq_err / sum_sq) : 0.0);
  std::printf("file: %.1f MB -> %.1f MB (%.2fx smaller) in %.2f s\n", in_bytes / 1e6,
              out_bytes / 1e6, static_cast<double>(in_bytes) / out_bytes, secs);
  return 0;
}

}  // namespace glide::cli
