#include "apps/sharded_run.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/error.h"

#ifdef GLIDE_MPI
#include "dist/mpi_world.h"
#include "dist/replicas.h"
#include "dist/sharded_eval.h"
#include "dist/sharded_serving.h"
#endif

namespace glide::cli {

int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(name)) {
      const int n = std::atoi(v);
      if (n > 0) return n;
    }
  return 1;
}

#ifdef GLIDE_MPI

namespace {

// The shard files the manifest at `path` names (none when there is no readable manifest there:
// it is replaced all the same, and its files stay).
std::vector<std::string> listed_shard_files(const std::string& path) {
  std::vector<std::string> files;
  if (!engine::is_shard_manifest(path)) return files;
  try {
    for (const auto& s : engine::read_shard_manifest(path).shards)
      files.push_back(path.substr(0, path.rfind('/') + 1) + s.file);
  } catch (const Error&) {
    files.clear();
  }
  return files;
}

class MpiShardedRun final : public ShardedRun {
 public:
  MpiShardedRun(int* argc, char*** argv) : world_(argc, argv) {
    rank = world_.rank();
    ranks = world_.size();
  }

  engine::ShardExchange& exchange() override { return exchange_; }

  engine::LoadedModel load(const std::string& path, bool optimizer_state) override {
    engine::LoadedModel m = engine::load_model_shard(path, ranks, rank, optimizer_state);
    join_label_counts(m.state, m.config.net.num_labels);
    return m;
  }

  bool any(bool flag) override { return world_.any(flag); }
  double broadcast(double value) override { return world_.broadcast(value); }

  engine::EvalResult evaluate(const engine::Network& shard, engine::LabelRange range,
                              const data::Dataset& test, std::size_t max_points,
                              const engine::InversePropensity* propensity) override {
    return dist::sharded_evaluate(shard, range, test, max_points, propensity);
  }

  void save(const std::string& path, const engine::Network& shard, const engine::Config& config,
            const engine::TrainingState& state, const engine::SaveOptions& options) override {
    const engine::LabelRange range = engine::shard_range(config.net.num_labels, ranks, rank);
    const std::string file = engine::shard_file_path(path, rank, ranks, state.batches);
    // The files of the checkpoint this one replaces, removed once it is complete.
    const std::vector<std::string> previous =
        rank == 0 ? listed_shard_files(path) : std::vector<std::string>{};
    // A shard keeps the label counts of its own labels (docs/model-format.md).
    engine::TrainingState shard_state = state;
    shard_state.label_counts.clear();
    if (state.label_counts.size() == config.net.num_labels)
      shard_state.label_counts.assign(state.label_counts.begin() + range.begin,
                                      state.label_counts.begin() + range.end);
    else
      shard_state.label_count_points = 0;
    std::string error;
    try {
      engine::save_model(file, shard, {engine::shard_config(config.net, range), config.train},
                         shard_state, options);
    } catch (const Error& e) {
      error = e.what();
    }
    // The manifest only once every shard file is complete.
    if (!world_.all(error.empty()))
      fail(error.empty() ? "another rank could not save its shard; " + path + " is unchanged"
                         : error);
    if (rank == 0) {
      engine::ShardManifest m{.num_labels = config.net.num_labels, .state = state, .shards = {}};
      for (int r = 0; r < ranks; ++r)
        m.shards.push_back({engine::shard_file_path(path, r, ranks, state.batches),
                            engine::shard_range(config.net.num_labels, ranks, r)});
      try {
        engine::write_shard_manifest(path, m);
      } catch (const Error& e) {
        error = e.what();
      }
    }
    if (!world_.all(error.empty()))
      fail(error.empty() ? "rank 0 could not write the manifest " + path : error);
    if (rank == 0)
      for (const std::string& old : previous) {
        bool kept = false;
        for (int r = 0; r < ranks; ++r)
          kept = kept || old == engine::shard_file_path(path, r, ranks, state.batches);
        std::error_code ignored;
        if (!kept) std::filesystem::remove(old, ignored);
      }
  }

  void sync_lower_layers(engine::Network& net, const engine::Config& config, bool always) override {
    if (always || dist::replicas_can_drift(config.net, config.train))
      dist::broadcast_lower_layers(net);
  }

  std::shared_ptr<const engine::Predictor> sharded_predictor(
      std::shared_ptr<const engine::Network> shard, engine::LabelRange range) override {
    predictor_ = std::make_shared<dist::ShardedPredictor>(std::move(shard), range);
    return predictor_;
  }
  void stop_serving() override {
    if (predictor_) predictor_->stop_shards();
  }
  void serve(const engine::Network& shard, engine::LabelRange range) override {
    dist::serve_shard(shard, range);
  }

  std::uint64_t bytes_sent() const override { return exchange_.bytes(); }
  double exchange_seconds() const override { return exchange_.seconds(); }

  [[noreturn]] void abort(const std::string& message) override { world_.abort(message); }

 private:
  // Puts every rank's share of the label counts together, where every shard has counts of the
  // same training set; drops them elsewhere.
  void join_label_counts(engine::TrainingState& state, std::uint32_t num_labels) {
    const double points = world_.broadcast(static_cast<double>(state.label_count_points));
    if (!world_.all(!state.label_counts.empty() &&
                    static_cast<double>(state.label_count_points) == points)) {
      state.label_counts.clear();
      state.label_count_points = 0;
      return;
    }
    state.label_counts = world_.all_gather(state.label_counts);
    if (state.label_counts.size() != num_labels)
      fail("the shards' label counts cover " + std::to_string(state.label_counts.size()) +
           " labels of " + std::to_string(num_labels));
  }

  dist::World world_;
  dist::MpiExchange exchange_;
  std::shared_ptr<dist::ShardedPredictor> predictor_;
};

}  // namespace

std::unique_ptr<ShardedRun> make_sharded_run(int* argc, char*** argv) {
  return std::make_unique<MpiShardedRun>(argc, argv);
}

#else

std::unique_ptr<ShardedRun> make_sharded_run(int*, char***) {
  fail("launched as " + std::to_string(launched_ranks()) +
       " ranks, but this glide was built without MPI (GLIDE_MPI=OFF): install an MPI "
       "(libopenmpi-dev) and rebuild, or run one process");
}

#endif

int run_sharded(int argc, char** argv, int (*run)(int, char**, ShardedRun*)) {
  const std::unique_ptr<ShardedRun> shards = make_sharded_run(&argc, &argv);
  try {
    return run(argc, argv, shards.get());
  } catch (const std::exception& e) {
    shards->abort(e.what());
  }
  return 1;  // not reached: abort() ends the process
}

}  // namespace glide::cli
