// `glide eval`: P@k and nDCG@k of a model on a test set, scoring every label (exact) and/or
// only the LSH active set (sampled), with the time per point of each.
#include <tbb/global_control.h>

#include <cstdio>
#include <thread>
#include <utility>

#include <cxxopts.hpp>

#include "apps/commands.h"
#include "apps/config_flags.h"
#include "common/error.h"
#include "data/dataset_io.h"
#include "engine/checkpoint.h"
#include "engine/evaluator.h"
#include "engine/predictor.h"

namespace glide::cli {

int cmd_eval(int argc, char** argv) {
  cxxopts::Options o("glide eval", "Evaluate a model: P@1/3/5 and nDCG@1/3/5 on a test set.");
  o.add_options()("model", "model file (.glide)", cxxopts::value<std::string>())(
      "test", "test data (.gds, XC text, libsvm; .zst ok)", cxxopts::value<std::string>())(
      "mode", "exact, sampled or both", cxxopts::value<std::string>()->default_value("both"))(
      "max-points", "evaluate at most this many points (0: all)",
      cxxopts::value<std::size_t>()->default_value("0"))(
      "threads", "worker threads (0: all cores)", cxxopts::value<unsigned>()->default_value("0"))(
      "skip-bad-lines", "drop malformed data lines (counted) instead of failing")("h,help",
                                                                                  "this help");
  o.add_options("sampled mode")("sparsity", "fraction of labels scored (default: the model's)",
                                cxxopts::value<double>())(
      "lsh-strategy", "union, topk or threshold (default: the model's)",
      cxxopts::value<std::string>())(
      "prior-fraction",
      "share of the labels scored that are the largest-bias ones (default: the "
      "model's)",
      cxxopts::value<double>());
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  if (!r.count("model")) fail("--model FILE is required");
  if (!r.count("test")) fail("--test FILE is required");
  const std::string mode = r["mode"].as<std::string>();
  if (mode != "exact" && mode != "sampled" && mode != "both")
    fail("--mode must be exact, sampled or both, got '" + mode + "'");
  const unsigned threads = r["threads"].as<unsigned>() ? r["threads"].as<unsigned>()
                                                       : std::thread::hardware_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);

  engine::LoadedModel m =
      engine::load_model(r["model"].as<std::string>(), /*optimizer_state=*/false);
  if (r.count("sparsity")) m.config.net.sparsity = r["sparsity"].as<double>();
  if (r.count("lsh-strategy"))
    engine::set_config_flag(m.config, "lsh-strategy", r["lsh-strategy"].as<std::string>());
  if (r.count("prior-fraction")) m.config.net.prior_fraction = r["prior-fraction"].as<double>();
  engine::validate(m.config.net);
  const engine::InferenceModel model(
      std::move(m.net), m.config,
      mode == "both" ? std::vector{engine::EvalMode::kExact, engine::EvalMode::kSampled}
                     : std::vector{engine::parse_eval_mode(mode)});
  data::ReadOptions ro;
  ro.skip_bad_lines = r.count("skip-bad-lines") > 0;
  const data::Dataset test = data::read_dataset(r["test"].as<std::string>(), ro);
  const std::size_t max_points = r["max-points"].as<std::size_t>();

  // The header comes with the first row, so that an error before it is the only output.
  bool header_printed = false;
  auto report = [&](const char* name, const engine::EvalResult& e) {
    if (!std::exchange(header_printed, true))
      std::printf("%-8s %7s %7s %7s %8s %8s %8s %10s %12s\n", "mode", "P@1", "P@3", "P@5", "nDCG@1",
                  "nDCG@3", "nDCG@5", "ms/point", "scored/point");
    std::printf("%-8s %7.4f %7.4f %7.4f %8.4f %8.4f %8.4f %10.3f %12.0f\n", name, e.precision[0],
                e.precision[2], e.precision[4], e.ndcg[0], e.ndcg[2], e.ndcg[4],
                1e3 * e.seconds_per_point(), e.mean_scored);
  };
  for (const auto& [kind, predictor] : model.predictors()) {
    if (mode != "both" && mode != engine::eval_mode_name(kind)) continue;
    report(engine::eval_mode_name(kind), engine::evaluate(*predictor, test, max_points));
  }
  return 0;
}

}  // namespace glide::cli
