// `glide train`: trains a sparse network on a dataset, with progress, periodic test P@k, a
// JSONL log, Ctrl-C checkpointing and --resume; with --caches on, also learned caches over hidden
// layers (cache/training_caches.h), saved in the model file.
#include <tbb/global_control.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "apps/cache_flags.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "apps/model_setup.h"
#include "apps/sharded_run.h"
#include "apps/train_report.h"
#include "cache/cached_predictor.h"
#include "cache/training_caches.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/timing.h"
#include "data/dataset_io.h"
#include "engine/checkpoint.h"
#include "engine/fit.h"
#include "engine/index_predictor.h"
#include "engine/output_index.h"
#include "engine/setup_log.h"
#include "engine/validation.h"
#include "engine/wide_centroids.h"
#include "engine/wide_check.h"

namespace glide::cli {

namespace {

// Ctrl-C (or SIGTERM) stops training after the current batch, then the model is saved. Killing
// the process half-way through that save would leave the previous file (saves are atomic) without
// a word, so a signal after the first, or one during the final save, says what is going on; the
// next one abandons the save, saying so.
std::atomic<bool> g_stop{false}, g_saving{false}, g_save_warned{false};
char g_save_note[640], g_abandon_note[640];  // formatted before the handler is installed
void write_note(const char* note) {
  for (std::size_t done = 0, n = std::strlen(note); done < n;) {
    const ssize_t w = ::write(STDERR_FILENO, note + done, n - done);
    if (w <= 0) return;
    done += static_cast<std::size_t>(w);
  }
}
extern "C" void on_interrupt(int) {
  if (!g_stop.exchange(true) && !g_saving.load()) return;  // the first stops training
  if (!g_save_warned.exchange(true)) return write_note(g_save_note);
  write_note(g_abandon_note);
  _exit(130);
}

// The output index of the trained network (engine/output_index.h), with what it took.
std::shared_ptr<const engine::OutputIndex> build_index(const engine::Network& net,
                                                       const data::Dataset& train, bool quiet) {
  const auto t0 = std::chrono::steady_clock::now();
  auto index = engine::OutputIndex::build(net, train, {}, [&](const std::string& line) {
    if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
  });
  if (!quiet)
    std::fprintf(stderr, "output index: %u clusters, %.1f MB, built in %.1f s\n", index->clusters(),
                 index->bytes() / 1e6, seconds_since(t0));
  return index;
}

// The process's peak resident memory so far (ru_maxrss), for the log and glide report.
double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// How often a label-sharded run makes its ranks' lower layers equal again where rounding can
// make them drift apart (dist/replicas.h).
constexpr std::uint64_t kResyncBatches = 256;

// `glide train`; with `shards`, as one rank of a label-sharded run under mpirun.
int run_train(int argc, char** argv, ShardedRun* shards) {
  cxxopts::Options o("glide train", "Train a sparse network on an extreme-classification dataset.");
  o.add_options()("train", "training data (.gds, XC text, libsvm; .zst ok)",
                  cxxopts::value<std::string>())(
      "test", "test data, evaluated during and after training", cxxopts::value<std::string>())(
      "valid-points",
      "hold this many training points out (spread over the file) and score them at every "
      "evaluation point (--eval-every, else each epoch) and at the end: the model saved is the "
      "best one (--best-by), not the last (0: none)",
      cxxopts::value<std::size_t>()->default_value("0"))(
      "valid", "validation data instead of held-out points (as --valid-points)",
      cxxopts::value<std::string>())(
      "best-by", "with validation: the best model's measure, p1+p5, p1, p5 or psp5",
      cxxopts::value<std::string>()->default_value("p1+p5"))(
      "patience",
      "with validation: stop after this many validations in a row without a new best (0: "
      "train every planned epoch)",
      cxxopts::value<std::uint32_t>()->default_value("0"))(
      "o,output", "model file to write (.glide)", cxxopts::value<std::string>())(
      "resume", "continue training from this model file", cxxopts::value<std::string>())(
      "log-jsonl",
      "write progress records (JSON lines) to this file: a new file per run, continued by --resume",
      cxxopts::value<std::string>())("skip-bad-lines",
                                     "drop malformed data lines (counted) instead of failing")(
      "print-config", "print the effective config and exit")(
      "cache-layers", "hidden layers (0-based, comma-separated) with a cache (implies --cache on)",
      cxxopts::value<std::string>()->default_value(""))(
      "cache-rows", "rows of each batch that train the caches (0: all)",
      cxxopts::value<std::uint32_t>()->default_value("64"))(
      "cache-budget", "most of the training time the caches may take",
      cxxopts::value<double>()->default_value("0.02"))(
      "index",
      "on: build the output index from the training data at the end and save it in the model "
      "(sampled inference uses it; glide index builds one later); off: none",
      cxxopts::value<std::string>()->default_value("on"))("q,quiet", "no progress line")(
      "verbose", "print the whole effective config (JSON) when training starts")("h,help",
                                                                                 "this help");
  add_config_flags(o);
  add_cache_switch(o, "train learned caches alongside the model and save them in it");
  add_cache_flags(o);
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  if (!r.count("train")) fail("--train FILE is required");
  if (!r.count("output") && !r.count("print-config")) fail("-o MODEL.glide is required");

  // Under mpirun every rank reads the same data and trains on the same batches: rank 0 alone
  // prints and logs.
  const bool leader = !shards || shards->rank == 0;
  const std::size_t valid_points = r["valid-points"].as<std::size_t>();
  const bool validating = valid_points > 0 || r.count("valid");
  if (valid_points > 0 && r.count("valid")) fail("--valid and --valid-points: give one of them");
  if (!validating && (r.count("patience") || r.count("best-by")))
    fail("--patience and --best-by need validation points (--valid-points or --valid)");
  const engine::BestBy best_by = engine::parse_best_by(r["best-by"].as<std::string>(), "--best-by");
  if (shards && (cache_switch(r) || !r["cache-layers"].as<std::string>().empty()))
    fail(
        "--cache: learned caches are not trained by a label-sharded run (mpirun); train them on "
        "the merged model in one process");
  data::ReadOptions ro;
  ro.skip_bad_lines = r.count("skip-bad-lines") > 0;
  // Setup: from here to the first batch, the test set's reading left out. It is part of what
  // training costs (the wide layer's start is most of it), so the summary and the log report it.
  const auto setup_start = std::chrono::steady_clock::now();
  data::Dataset train = data::read_dataset(r["train"].as<std::string>(), ro);
  data::Dataset valid;
  if (valid_points > 0) {
    engine::ValidationSplit split = engine::split_validation(train, valid_points, "--valid-points");
    train = std::move(split.train);
    valid = std::move(split.valid);
  } else if (r.count("valid")) {
    valid = data::read_dataset(r["valid"].as<std::string>(), ro);
  }
  const double data_seconds = seconds_since(setup_start);
  data::Dataset test;
  double test_read_seconds = 0;
  if (r.count("test")) {
    const auto t = std::chrono::steady_clock::now();
    test = data::read_dataset(r["test"].as<std::string>(), ro);
    test_read_seconds = seconds_since(t);
  }

  engine::Config config;
  engine::TrainingState state;
  std::unique_ptr<engine::Network> net;
  // The network trained to the end, where the best validation was before it: kept alive until
  // the trainer and the caches, which refer to it, are gone.
  std::unique_ptr<engine::Network> last_net;
  if (r.count("resume")) {
    engine::LoadedModel m = shards ? shards->load(r["resume"].as<std::string>())
                                   : engine::load_model(r["resume"].as<std::string>());
    engine::require_trainable(*m.net, r["resume"].as<std::string>());
    if (!m.has_optimizer_state)
      fail(r["resume"].as<std::string>() + ": has no optimizer state to resume from");
    config = m.config;
    state = m.state;
    net = std::move(m.net);
    const auto before = config.net;
    apply_config_flags(r, config);
    if (engine::to_json({config.net, {}}) != engine::to_json({before, {}}))
      fail(
          "--resume: the network's shape and sampling come from the model; only training flags may "
          "change");
  } else {
    config.net.num_features = train.num_features;
    config.net.num_labels = std::max({train.num_labels, test.num_labels, valid.num_labels});
    config.net.num_features = std::max({train.num_features, test.num_features, valid.num_features});
    apply_config_flags(r, config);
    engine::validate(config.net);
  }
  if (r.count("print-config")) {
    std::printf("%s\n", engine::to_json(config).c_str());
    return 0;
  }
  // A resumed run that would train nothing says so, rather than "trained 0 samples" and a copy.
  if (const double asked = config.train.epochs * static_cast<double>(train.num_points());
      r.count("resume") && static_cast<double>(state.samples) >= asked) {
    char line[256];
    std::snprintf(line, sizeof line,
                  ": has trained %llu samples (%.2f epochs of this training set) already; "
                  "--epochs %g asks for %.0f: nothing to train (raise --epochs to go on)",
                  static_cast<unsigned long long>(state.samples),
                  static_cast<double>(state.samples) /
                      std::max<double>(1, static_cast<double>(train.num_points())),
                  config.train.epochs, asked);
    fail(r["resume"].as<std::string>() + line);
  }
  // The evaluation sets against the model now, not at their first evaluation an epoch in.
  const auto check_fits = [&](const data::Dataset& d, const char* flag) {
    if (d.num_features > config.net.num_features)
      fail(std::string(flag) + " " + r[flag + 2].as<std::string>() + ": " +
           std::to_string(d.num_features) + " features, the model has " +
           std::to_string(config.net.num_features));
  };
  check_fits(test, "--test");
  if (r.count("valid")) check_fits(valid, "--valid");
  const std::string out_path = r["output"].as<std::string>();
  check_writable(out_path, "-o");
  // A sharded run does not check its wide layer against the network alone (every rank would
  // have to train the trial): auto keeps it.
  if (shards && !net && config.net.wide == engine::WideMode::kAuto)
    config.net.wide = engine::WideMode::kOn;
  // The labels' counts in this run's training set, saved with the model: PSP@k's propensities
  // (glide eval scores PSP@k without the training file; a shard's file keeps its labels').
  // Every evaluation also weighs each label by its rarity in the training set (PSP@k). Both are
  // the whole set's, counted before a sharded run keeps its shard's labels.
  state.label_counts = train.label_counts();
  state.label_counts.resize(config.net.num_labels, 0);
  state.label_count_points = train.num_points();
  std::optional<engine::InversePropensity> propensity;
  if (test.num_points() || validating) propensity.emplace(engine::InversePropensity::of(train));
  // This process's labels: all of them, or its rank's shard (engine/sharded_model.h).
  engine::LabelRange range{0, config.net.num_labels};
  double wide_reference_norm = 0;
  engine::WideLayer shard_wide;  // a new shard's wide layer, when it needs the whole set's labels
  if (shards) {
    range = engine::shard_range(config.net.num_labels, shards->ranks, shards->rank);
    if (!net) {
      engine::LabelNeighbours neighbours;
      wide_reference_norm = engine::resolve_wide_start(config.net, train, &neighbours);
      shard_wide = engine::shard_wide_start(config.net, train, range, &neighbours);
    }
    engine::keep_shard_labels(train, range);
  }
  const unsigned threads =
      config.train.threads ? config.train.threads : std::thread::hardware_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
  const bool quiet = r.count("quiet") > 0 || !leader;
  const std::string index_flag = r["index"].as<std::string>();
  if (index_flag != "on" && index_flag != "off")
    fail("--index must be on or off, got '" + index_flag + "'");
  // A new model's wide layer (auto): checked against the network alone on held-out training
  // points; the run then trains, from the start, the wide layer the check chose or the network
  // alone with the rare labels' path.
  engine::LabelNeighbours checked_neighbours;
  std::optional<engine::WideCheck> wide_check;
  // Each stage of the setup as it ends: at 670k labels it takes as long as the training.
  const engine::SetupLog setup_log = [quiet](const std::string& line) {
    if (!quiet) std::fprintf(stderr, "  %s\n", line.c_str());
  };
  if (!net && config.net.wide == engine::WideMode::kAuto) {
    if (!quiet)
      std::fprintf(stderr,
                   "wide layer auto: checking the wide start against the network alone on "
                   "held-out training points\n");
    wide_check = engine::check_wide(config, train, &checked_neighbours, &g_stop, setup_log);
    if (!quiet) {
      if (wide_check->keep && wide_check->start.held_out > 0)
        std::fprintf(stderr, "%s\n", wide_start_line(wide_check->start).c_str());
      std::fprintf(stderr, "%s\n", engine::describe(*wide_check).c_str());
    }
  }
  if (r.count("verbose"))
    std::fprintf(stderr, "config: %s\n", engine::to_json(config, -1).c_str());
  else if (!quiet)
    std::fprintf(stderr, "%s\n", training_line(config).c_str());
  if (shards && !quiet)
    std::fprintf(stderr, "label-sharded over %d ranks (MPI): rank 0 holds labels [%u, %u)\n",
                 shards->ranks, range.begin, range.end);
  // A shard starts its rows as the whole layer's rows of its labels.
  if (!net) {
    net = std::make_unique<engine::Network>(engine::shard_config(config.net, range),
                                            engine::NetworkStorage{.first_label = range.begin});
    if (!shard_wide.empty()) net->wide = std::move(shard_wide);
  }

  // A shard's sampler works on its own labels; its random draws differ from the other ranks'.
  engine::Config sampler_config{engine::shard_config(config.net, range), config.train};
  if (shards)
    sampler_config.train.seed =
        derive_seed(config.train.seed, 7000 + static_cast<std::uint64_t>(shards->rank));
  engine::Trainer trainer(*net, config.train,
                          make_train_sampler(sampler_config, *net, state.batches > 0));
  trainer.set_batches(state.batches);
  if (shards) trainer.set_exchange(&shards->exchange());

  std::unique_ptr<cache::TrainingCaches> caches;
  if (cache_switch(r) || !r["cache-layers"].as<std::string>().empty()) {
    cache::TrainingCacheOptions co;
    co.layers = cache::parse_layers(r["cache-layers"].as<std::string>(), config.net.hidden.size());
    co.target = apply_cache_flags(r, co.cache);
    co.rows_per_batch = r["cache-rows"].as<std::uint32_t>();
    co.time_budget = r["cache-budget"].as<double>();
    co.seed = config.train.seed;
    // Resuming continues the file's caches; without --cache they are dropped (stale weights).
    cache::CacheStates warm;
    if (r.count("resume")) warm = cache::read_caches(r["resume"].as<std::string>(), config.net);
    caches = std::make_unique<cache::TrainingCaches>(*net, co, warm);
  }

  std::ofstream jsonl;
  if (r.count("log-jsonl") && leader) {
    // One run per log (glide report reads it as one curve); a resumed run continues its log, and
    // its "start" record tells the report that what follows goes on from there.
    const bool resuming = r.count("resume") > 0;
    jsonl.open(r["log-jsonl"].as<std::string>(), resuming ? std::ios::app : std::ios::trunc);
    if (!jsonl) fail(r["log-jsonl"].as<std::string>(), "cannot open for writing");
    jsonl << nlohmann::json{{"type", "start"}, {"resume", resuming}, {"samples", state.samples}}
                 .dump()
          << "\n"
          << std::flush;
  }
  const std::uint64_t total = static_cast<std::uint64_t>(config.train.epochs * train.num_points());
  Progress progress("train", total, "samples", quiet, state.samples);
  double last_log = -1;
  double last_p1 = -1;
  std::uint64_t last_eval_samples = 0;
  // The log's "seconds" are wall time (evaluations included); glide report subtracts each
  // record's "eval_seconds".
  auto wall_seconds = [](const engine::FitProgress& p) { return p.seconds + p.eval_seconds; };
  auto eval_record = [&](const engine::FitProgress& p, const engine::EvalResult& e) {
    nlohmann::json rec{
        {"type", "eval"},       {"seconds", wall_seconds(p)}, {"samples", p.samples},
        {"epoch", p.epoch},     {"p1", e.precision[0]},       {"p3", e.precision[2]},
        {"p5", e.precision[4]}, {"points", e.points},         {"eval_seconds", e.seconds}};
    if (e.has_psp) {
      rec["psp1"] = e.psp[0];
      rec["psp3"] = e.psp[2];
      rec["psp5"] = e.psp[4];
    }
    return rec;
  };
  engine::FitOptions fo;
  fo.test = test.num_points() ? &test : nullptr;
  if (validating) {
    fo.validation = &valid;
    fo.best_by = best_by;
    fo.patience = r["patience"].as<std::uint32_t>();
  }
  // A sharded run's evaluations: every rank scores its shard of each point and gets the same
  // result, so every rank keeps the same best and stops after the same batch.
  if (shards)
    fo.score = [&](const data::Dataset& ds, std::size_t max_points,
                   const engine::InversePropensity* p) {
      return shards->evaluate(*net, range, ds, max_points, p);
    };
  if (propensity) fo.propensity = &*propensity;
  fo.stop = &g_stop;
  fo.start_samples = state.samples;
  fo.wide_reference_norm = wide_reference_norm;
  if (wide_check) fo.wide_neighbours = &checked_neighbours;
  if (caches) fo.on_batch = [&](std::span<const data::SparseView> in) { caches->on_batch(in); };
  Setup setup{.data_seconds = data_seconds};
  fo.on_start = [&] {
    setup.seconds = seconds_since(setup_start) - test_read_seconds;
    if (jsonl) {
      nlohmann::json rec{
          {"type", "setup"}, {"seconds", setup.seconds}, {"data_seconds", setup.data_seconds}};
      // The wide layer's check, part of the setup.
      if (wide_check)
        rec["wide_check"] = {{"keep", wide_check->keep},
                             {"wide_p1", wide_check->wide_p1},
                             {"wide_p5", wide_check->wide_p5},
                             {"alone_p1", wide_check->alone_p1},
                             {"alone_p5", wide_check->alone_p5},
                             {"alone_epochs", wide_check->alone_epochs},
                             {"held_out", wide_check->start.held_out},
                             {"seconds", wide_check->seconds}};
      jsonl << rec.dump() << "\n" << std::flush;
    }
    progress.restart();
  };
  fo.setup_log = setup_log;
  fo.on_wide_start = [&](const engine::WideStartChoice& c) {
    if (!quiet) std::fprintf(stderr, "%s\n", wide_start_line(c).c_str());
  };
  // Ranks stop after the same batch: a signal or the time budget on any rank stops them all. The
  // lr schedule of a sharded run follows samples alone (time differs from rank to rank; the
  // replicated layers must see the same lr).
  engine::TrainConfig fit_config = config.train;
  std::atomic<bool> stop_all{false};
  const auto fit_start = std::chrono::steady_clock::now();
  if (shards) {
    fit_config.max_seconds = 0;
    fo.stop = &stop_all;
    fo.on_batch = [&](std::span<const data::SparseView>) {
      const bool out_of_time =
          config.train.max_seconds > 0 && seconds_since(fit_start) >= config.train.max_seconds;
      if (shards->any(g_stop.load() || out_of_time)) stop_all.store(true);
      if (trainer.batches() % kResyncBatches == 0) shards->sync_lower_layers(*net, config, false);
    };
  }
  // The best validation so far is saved to the output as it happens: the run keeps it whatever
  // comes after (and a crash later loses nothing of it). A failed save is no reason to stop
  // training: the run then saves its last model, as without validation.
  bool best_saved = false, keep_best = validating;
  engine::EvalResult best_eval;
  fo.on_best = [&](const engine::FitProgress& p) {
    best_eval = p.valid;
    if (!keep_best) return;
    engine::SaveOptions best_so;
    best_so.threads = static_cast<int>(threads);  // between batches: the workers are idle
    cache::CacheSectionWriter sections;
    cache::CacheStates states;
    if (caches) states = caches->states();
    best_so.extra_sections = [&](engine::ModelFileWriter& w) {
      if (caches) sections.add(w, states);
    };
    try {
      engine::TrainingState best_state = state;
      best_state.samples = p.samples;
      best_state.batches = trainer.batches();
      if (shards) {
        // Collective: the saved replicas of the lower layers are equal (rank 0's).
        shards->sync_lower_layers(*net, config, true);
        shards->save(out_path, *net, config, best_state, best_so);
      } else {
        engine::save_model(out_path, *net, config, best_state, best_so);
      }
      best_saved = true;
    } catch (const Error& e) {
      // A sharded save throws on every rank when any failed: all go on alike.
      keep_best = best_saved = false;
      if (leader)
        std::fprintf(stderr,
                     "\nwarning: the best model so far was not saved (%s); the run saves its "
                     "last model instead\n",
                     e.what());
    }
  };
  fo.on_progress = [&](const engine::FitProgress& p) {
    if (p.validated && jsonl) {
      nlohmann::json rec = eval_record(p, p.valid);
      rec["type"] = "valid";
      rec["best"] = p.best;
      jsonl << rec.dump() << "\n" << std::flush;
    }
    if (p.evaluated) {
      last_p1 = p.eval.precision[0];
      last_eval_samples = p.samples;
      if (jsonl) jsonl << eval_record(p, p.eval).dump() << "\n" << std::flush;
    }
    if (p.evaluated || p.validated) return;
    char extra[160];
    std::string tail;
    if (last_p1 >= 0) tail += ", test P@1 " + std::to_string(last_p1).substr(0, 6);
    if (p.has_best)
      tail += ", valid best " + std::to_string(p.best_score).substr(0, 6) + " at epoch " +
              std::to_string(p.best_epoch).substr(0, 4);
    std::snprintf(extra, sizeof extra, "epoch %.2f, loss %.4f%s", p.epoch, p.loss, tail.c_str());
    progress.update(p.samples, extra);
    if (jsonl && wall_seconds(p) - last_log >= 1.0) {
      last_log = wall_seconds(p);
      jsonl << nlohmann::json{{"type", "progress"},
                              {"seconds", wall_seconds(p)},
                              {"samples", p.samples},
                              {"epoch", p.epoch},
                              {"loss", p.loss},
                              {"samples_per_second", p.samples_per_second},
                              {"peak_rss_mb", peak_rss_mb()}}
                   .dump()
            << "\n"
            << std::flush;
    }
  };
  std::snprintf(g_save_note, sizeof g_save_note,
                "\nsaving the model to %s; press Ctrl-C again to abandon the save\n",
                out_path.c_str());
  std::snprintf(g_abandon_note, sizeof g_abandon_note,
                "\nsave abandoned: %s is as it was before this run\n", out_path.c_str());
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  const std::uint64_t start_batches = state.batches;
  const engine::FitProgress done = engine::fit(*net, trainer, train, fit_config, fo);
  // Every rank takes the interrupted path (no index, no evaluation: collectives) or none.
  if (shards && shards->any(g_stop.load())) g_stop.store(true);
  g_saving.store(true);
  char extra[96];
  std::snprintf(extra, sizeof extra, "loss %.4f", done.loss);
  progress.finish(done.samples, extra);
  // With validation the output already holds the best model. Where that came before the end it
  // is the model finished (indexed, evaluated) and saved again; an interrupted run leaves it.
  const bool revert = best_saved && done.best_samples != done.samples;
  if (g_stop.load() && leader)
    std::fprintf(stderr,
                 revert ? "interrupted: %s keeps the best validation model; the training after it "
                          "is not saved\n"
                        : "interrupted: saving a checkpoint to %s\n",
                 out_path.c_str());

  state.samples = done.samples;
  state.batches = trainer.batches();
  if (shards) shards->sync_lower_layers(*net, config, true);  // the saved replicas are equal
  engine::SaveOptions so;
  cache::CacheSectionWriter cache_sections;
  cache::CacheStates saved_caches;
  if (caches) saved_caches = caches->states();
  if (revert && !g_stop.load()) {
    engine::LoadedModel best = shards ? shards->load(out_path) : engine::load_model(out_path);
    last_net = std::move(net);
    net = std::move(best.net);
    // The run's label counts: a rank's reloaded shard has none of its own (its manifest's state).
    best.state.label_counts = std::move(state.label_counts);
    best.state.label_count_points = state.label_count_points;
    state = best.state;
    if (caches) saved_caches = cache::read_caches(out_path, config.net);
  }
  // An interrupted run saves at once; a failed index build does not cost the trained model.
  std::shared_ptr<const engine::OutputIndex> index;
  if (shards && index_flag == "on" && !quiet)
    std::fprintf(stderr,
                 "output index: not built by a sharded run (glide index builds one on the merged "
                 "model)\n");
  if (index_flag == "on" && !g_stop.load() && !shards) {
    try {
      index = build_index(*net, train, quiet);
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: no output index saved: %s\n", e.what());
    }
  }
  so.extra_sections = [&](engine::ModelFileWriter& w) {
    if (caches) cache_sections.add(w, saved_caches);
    if (index) index->save(w);
  };
  const auto save_start = std::chrono::steady_clock::now();
  try {
    // An interrupted run whose output holds its best validation leaves it there.
    const bool keep_output = revert && g_stop.load();
    if (shards && !keep_output)
      shards->save(out_path, *net, config, state, so);
    else if (!keep_output)
      engine::save_model(out_path, *net, config, state, so);
  } catch (const Error& e) {
    if (shards) throw;
    // The output was writable when training began; keep the trained model somewhere.
    const std::string rescue = rescue_path(out_path);
    try {
      engine::save_model(rescue, *net, config, state, so);
    } catch (const Error& again) {
      fail(std::string(e.what()) + "; saving it to " + rescue + " failed too: " + again.what());
    }
    fail(std::string(e.what()) + "; the trained model was saved to " + rescue + " instead");
  }
  const std::string save_time = engine::seconds_text(save_start);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (leader) print_training_summary(done, done.samples - fo.start_samples, trainer.times(), setup);
  if (leader && validating && done.has_best)
    print_validation(done, best_eval, valid.num_points(), fo, keep_best && best_saved);
  if (shards && leader && done.batches > start_batches)
    std::printf(
        "exchange: %.0f bytes per batch from each rank; rank 0 spent %.1f%% of its training time "
        "in the reductions (waiting for the other ranks included)\n",
        static_cast<double>(shards->bytes_sent()) /
            static_cast<double>(done.batches - start_batches),
        100 * shards->exchange_seconds() / std::max(done.seconds, 1e-9));
  if (caches) {
    std::printf("caches: %llu rows in %.1f s (%.1f%% of training time)\n",
                static_cast<unsigned long long>(caches->rows()), caches->seconds(),
                100 * caches->seconds() / std::max(done.seconds, 1e-9));
    for (const auto& c : caches->report())
      std::printf(
          "  layer %u: %llu examples, %zu hot labels, threshold %.5f (held-out rows with a hot "
          "answer: %zu, of them hits: %zu, agreeing: %zu)\n",
          c.layer, static_cast<unsigned long long>(c.examples), c.hot, c.threshold, c.records,
          c.hits, c.agreed);
  }
  if (leader) std::printf("saved %s in %s\n", out_path.c_str(), save_time.c_str());
  if (fo.test && !g_stop.load()) {
    engine::EvalOptions eo;
    eo.propensity = fo.propensity;
    const engine::EvalResult e =
        shards ? shards->evaluate(*net, range, test, 0, fo.propensity)
               : engine::evaluate(
                     *engine::borrow_predictor(*net, engine::EvalMode::kExact, nullptr), test, eo);
    if (leader) print_eval("test (exact)", e);
    if (index) {
      const engine::IndexPredictor sampled(
          std::shared_ptr<const engine::Network>(std::shared_ptr<void>{}, net.get()), index);
      print_eval("test (sampled, output index)", engine::evaluate(sampled, test));
    }
    // A run stopped by --max-seconds (or whose last batch was no evaluation point) still ends
    // its log with a P@1 point: the final evaluation, on every test point.
    if (jsonl && (done.samples != last_eval_samples || revert)) {
      nlohmann::json rec = eval_record(done, e);
      rec["final"] = true;
      if (revert) rec["model_samples"] = state.samples;  // the best validation's model
      jsonl << rec.dump() << "\n" << std::flush;
    }
  }
  return g_stop.load() ? 130 : 0;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  if (launched_ranks() <= 1) return run_train(argc, argv, nullptr);
  return run_sharded(argc, argv, run_train);
}

}  // namespace glide::cli
