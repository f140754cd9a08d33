// `glide eval`: P@k and nDCG@k of a model on a test set, scoring every label (exact) and/or
// only the candidates of the output index (sampled), with the time per point of each and, with
// both, the recall of the sampled top-k against the exact top-k; and propensity-scored precision
// (PSP@k) from the label counts of the model's training set (saved in the model by glide train,
// or read from --train).
#include <tbb/global_control.h>

#include <cstdio>
#include <optional>
#include <thread>
#include <utility>

#include <cxxopts.hpp>

#include "apps/bench_util.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "apps/sharded_run.h"
#include "common/error.h"
#include "data/dataset_io.h"
#include "engine/checkpoint.h"
#include "engine/evaluator.h"
#include "engine/index_predictor.h"
#include "engine/predictor.h"
#include "engine/propensity.h"

namespace glide::cli {

namespace {

// One row of the table (with its header first when `header`); recall columns only with both modes
// (against the exact top-k), probes only for the index, PSP@k columns when computed.
void print_eval_row(const char* name, const engine::EvalResult& e, const std::string& probes,
                    bool recall, bool header) {
  if (header) {
    std::printf("%-8s %7s %7s %7s %8s %8s %8s", "mode", "P@1", "P@3", "P@5", "nDCG@1", "nDCG@3",
                "nDCG@5");
    if (e.has_psp) std::printf(" %7s %7s %7s", "PSP@1", "PSP@3", "PSP@5");
    std::printf(" %10s %12s %8s %8s %8s\n", "ms/point", "scored/point", "probes", "recall@1",
                "recall@5");
  }
  std::printf("%-8s %7.4f %7.4f %7.4f %8.4f %8.4f %8.4f", name, e.precision[0], e.precision[2],
              e.precision[4], e.ndcg[0], e.ndcg[2], e.ndcg[4]);
  if (e.has_psp) std::printf(" %7.4f %7.4f %7.4f", e.psp[0], e.psp[2], e.psp[4]);
  std::printf(" %10.3f %12.0f %8s", 1e3 * e.seconds_per_point(), e.mean_scored, probes.c_str());
  if (recall)
    std::printf(" %8.4f %8.4f\n", e.recall[0], e.recall[4]);
  else
    std::printf(" %8s %8s\n", "-", "-");
}

// A test set whose labels go beyond the model's: those labels are never predicted and count as
// misses. A set of another label space gives P@k near 0 without this line; a test label the
// training never saw is legitimate, so it is a warning, not an error.
void warn_unknown_labels(const data::Dataset& test, std::uint32_t model_labels,
                         const std::string& path) {
  if (test.num_labels <= model_labels) return;
  std::fprintf(stderr,
               "glide eval: warning: %s has %u labels, the model %u: labels from %u on are never "
               "predicted and count as misses\n",
               path.c_str(), test.num_labels, model_labels, model_labels);
}

// `glide eval`; with `shards`, as one rank of a label-sharded evaluation under mpirun: each rank
// loads its shard of the model (a sharded model's own file, or its range of any other) and
// scores it; rank 0 prints (exact mode only).
int run_eval(int argc, char** argv, ShardedRun* shards) {
  cxxopts::Options o("glide eval", "Evaluate a model: P@1/3/5 and nDCG@1/3/5 on a test set.");
  o.add_options()("model", "model file (.glide)", cxxopts::value<std::string>())(
      "test", "test data (.gds, XC text, libsvm; .zst ok)", cxxopts::value<std::string>())(
      "mode", "exact, sampled or both", cxxopts::value<std::string>()->default_value("both"))(
      "max-points", "evaluate at most this many points (0: all)",
      cxxopts::value<std::size_t>()->default_value("0"))(
      "threads", "worker threads (0: all cores)", cxxopts::value<unsigned>()->default_value("0"))(
      "skip-bad-lines", "drop malformed data lines (counted) instead of failing")(
      "train",
      "the model's training data: propensity-scored precision (PSP@1/3/5, normalised), each "
      "correct label weighted by its inverse propensity 1 + C (N + B)^-A from its count N in "
      "this file (docs/inference.md); without it, the counts glide train saved in the model, "
      "where it has them",
      cxxopts::value<std::string>())("psp-a",
                                     "the propensity model's A (XC repository: 0.6 for "
                                     "Amazon data, 0.5 for Wikipedia)",
                                     cxxopts::value<double>()->default_value("0.55"))(
      "psp-b", "the propensity model's B (XC repository: 2.6 for Amazon data, 0.4 for Wikipedia)",
      cxxopts::value<double>()->default_value("1.5"))("h,help", "this help");
  o.add_options("sampled mode")("probes", probes_help("a list prints a row each"),
                                cxxopts::value<std::string>())(
      "search",
      "what sampled mode searches: index (the output index) or lsh (the LSH tables of "
      "training, for comparison; --sparsity, --lsh-strategy and --prior-fraction apply to it)",
      cxxopts::value<std::string>()->default_value("index"))(
      "sparsity", "lsh: fraction of labels scored (default: the model's)",
      cxxopts::value<double>())("lsh-strategy",
                                "lsh: union, topk or threshold (default: the model's)",
                                cxxopts::value<std::string>())(
      "prior-fraction",
      "lsh: share of the labels scored that are the largest-bias ones (default: the "
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
  // Under mpirun the default is exact mode (the one a sharded evaluation has).
  const std::string mode = shards && !r.count("mode") ? "exact" : r["mode"].as<std::string>();
  if (mode != "exact" && mode != "sampled" && mode != "both")
    fail("--mode must be exact, sampled or both, got '" + mode + "'");
  const unsigned threads = r["threads"].as<unsigned>() ? r["threads"].as<unsigned>()
                                                       : std::thread::hardware_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);

  const std::string search = r["search"].as<std::string>();
  if (search != "index" && search != "lsh")
    fail("--search must be index or lsh, got '" + search + "'");
  std::vector<std::uint32_t> probes{0};
  if (r.count("probes")) probes = parse_probes_list(r["probes"].as<std::string>());
  const std::string path = r["model"].as<std::string>();
  if (shards && mode != "exact")
    fail("--mode " + mode +
         ": an evaluation under mpirun scores every label of each shard (exact "
         "mode); sampled mode needs the whole model in one process");
  for (const char* flag : {"psp-a", "psp-b"})
    if (!(r[flag].as<double>() > 0))
      fail(std::string("--") + flag + " must be positive, got " +
           std::to_string(r[flag].as<double>()));
  const engine::PropensityParams psp{.a = r["psp-a"].as<double>(), .b = r["psp-b"].as<double>()};
  // The training labels' propensities, read first: a bad file fails before the model loads.
  std::optional<engine::InversePropensity> propensity;
  if (r.count("train")) {
    data::ReadOptions ro;
    ro.skip_bad_lines = r.count("skip-bad-lines") > 0;
    propensity =
        engine::InversePropensity::of(data::read_dataset(r["train"].as<std::string>(), ro), psp);
  }
  engine::LoadedModel m = shards ? shards->load(path, /*optimizer_state=*/false)
                                 : engine::load_model(path, /*optimizer_state=*/false);
  if (!propensity && !m.state.label_counts.empty())
    propensity.emplace(m.state.label_counts, m.state.label_count_points, psp);
  if (!propensity && (r.count("psp-a") || r.count("psp-b")))
    fail("--psp-a and --psp-b: " + path +
         " has no label counts of its training set; give that set with --train");
  if (shards) {
    const std::uint32_t labels = m.config.net.num_labels;
    const engine::LabelRange range = engine::shard_range(labels, shards->ranks, shards->rank);
    data::ReadOptions ro;
    ro.skip_bad_lines = r.count("skip-bad-lines") > 0;
    const data::Dataset test = data::read_dataset(r["test"].as<std::string>(), ro);
    if (shards->rank == 0) warn_unknown_labels(test, labels, r["test"].as<std::string>());
    engine::EvalResult e = shards->evaluate(*m.net, range, test, r["max-points"].as<std::size_t>(),
                                            propensity ? &*propensity : nullptr);
    e.mean_scored = labels;
    if (shards->rank == 0) print_eval_row("exact", e, "-", false, true);
    return 0;
  }
  if (r.count("sparsity")) m.config.net.sparsity = r["sparsity"].as<double>();
  if (r.count("lsh-strategy"))
    engine::set_config_flag(m.config, "lsh-strategy", r["lsh-strategy"].as<std::string>());
  if (r.count("prior-fraction")) m.config.net.prior_fraction = r["prior-fraction"].as<double>();
  engine::validate(m.config.net);
  engine::PredictOptions sampled;
  sampled.search = search == "lsh" ? engine::SampledSearch::kLsh : engine::SampledSearch::kIndex;
  if (mode != "exact" && search == "index")
    sampled.index = engine::OutputIndex::load(path, m.net->output->rows(), m.net->output->cols());
  const engine::InferenceModel model(
      std::move(m.net), m.config,
      mode == "both" ? std::vector{engine::EvalMode::kExact, engine::EvalMode::kSampled}
                     : std::vector{engine::parse_eval_mode(mode)},
      sampled);
  data::ReadOptions ro;
  ro.skip_bad_lines = r.count("skip-bad-lines") > 0;
  const data::Dataset test = data::read_dataset(r["test"].as<std::string>(), ro);
  warn_unknown_labels(test, model.config().net.num_labels, r["test"].as<std::string>());
  const std::size_t max_points = r["max-points"].as<std::size_t>();

  // The header comes with the first row, so that an error before it is the only output.
  bool header_printed = false;
  auto report = [&](const char* name, const engine::EvalResult& e, const std::string& probes,
                    bool recall) {
    print_eval_row(name, e, probes, recall, !std::exchange(header_printed, true));
  };
  engine::TopLabels exact_top;
  engine::EvalOptions eo;
  eo.max_points = max_points;
  eo.propensity = propensity ? &*propensity : nullptr;
  if (mode != "sampled") {
    eo.top_out = mode == "both" ? &exact_top : nullptr;
    report("exact", engine::evaluate(model.predictor(engine::EvalMode::kExact), test, eo), "-",
           false);
  }
  if (mode == "exact") return 0;
  const engine::Predictor& sampled_predictor = model.predictor(engine::EvalMode::kSampled);
  const auto* index = dynamic_cast<const engine::IndexPredictor*>(&sampled_predictor);
  eo.top_out = nullptr;
  eo.reference = mode == "both" ? &exact_top : nullptr;
  for (const std::uint32_t p : probes) {
    eo.search.probes = p;
    const std::string shown = index ? std::to_string(index->probes(eo.search)) : "-";
    report("sampled", engine::evaluate(sampled_predictor, test, eo), shown, mode == "both");
    if (!index) break;  // the LSH tables have no probes
  }
  return 0;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  if (launched_ranks() <= 1) return run_eval(argc, argv, nullptr);
  return run_sharded(argc, argv, run_eval);
}

}  // namespace glide::cli
