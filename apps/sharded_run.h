// This process's part of a label-sharded `glide train`, `eval` or `serve` under mpirun (dist/):
// which labels it holds, the exchange its Trainer reduces through, and the collective steps of
// the run (loading its shard, agreeing to stop, evaluating, saving shard files and the manifest).
// Without MPI (GLIDE_MPI off) there are none: make_sharded_run refuses a launch of several ranks.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"
#include "engine/checkpoint.h"
#include "engine/evaluator.h"
#include "engine/predictor.h"
#include "engine/shard_exchange.h"
#include "engine/sharded_model.h"

namespace glide::cli {

class ShardedRun {
 public:
  virtual ~ShardedRun() = default;
  int rank = 0, ranks = 1;

  virtual engine::ShardExchange& exchange() = 0;
  // The model at `path` (one file or a sharded model), as this rank's shard; its config is the
  // whole model's.
  virtual engine::LoadedModel load(const std::string& path, bool optimizer_state = true) = 0;
  // Whether `flag` holds on any rank (every rank stops after the same batch).
  virtual bool any(bool flag) = 0;
  // Rank 0's value on every rank.
  virtual double broadcast(double value) = 0;
  // P@k of the sharded model on the first `max_points` points of `test` (0: all), and PSP@k with
  // `propensity`; the same on every rank (collective).
  virtual engine::EvalResult evaluate(const engine::Network& shard, engine::LabelRange range,
                                      const data::Dataset& test, std::size_t max_points = 0,
                                      const engine::InversePropensity* propensity = nullptr) = 0;
  // Writes this rank's shard file, then (once every rank's is complete) rank 0 writes the
  // manifest at `path` atomically. Throws on every rank when any rank failed.
  virtual void save(const std::string& path, const engine::Network& shard,
                    const engine::Config& config, const engine::TrainingState& state,
                    const engine::SaveOptions& options) = 0;
  // Makes every rank's lower layers rank 0's when they can drift apart (dist/replicas.h), or
  // with `always`. Collective.
  virtual void sync_lower_layers(engine::Network& net, const engine::Config& config,
                                 bool always) = 0;
  // Serving (rank 0): a predictor that scores `shard` (labels `range`) together with every other
  // rank's, which wait in serve(); stop_serving() releases them once rank 0 is done.
  virtual std::shared_ptr<const engine::Predictor> sharded_predictor(
      std::shared_ptr<const engine::Network> shard, engine::LabelRange range) = 0;
  virtual void stop_serving() = 0;
  // Serving (the other ranks): scores rank 0's batches on `shard` until it stops.
  virtual void serve(const engine::Network& shard, engine::LabelRange range) = 0;
  // Bytes this rank contributed to reductions so far.
  virtual std::uint64_t bytes_sent() const = 0;
  // Seconds this rank spent in those reductions (waiting for slower ranks included).
  virtual double exchange_seconds() const = 0;
  // Prints "glide: rank R of N: MESSAGE" and ends every rank.
  [[noreturn]] virtual void abort(const std::string& message) = 0;
};

// The ranks of the job this process was launched in, from the launcher's environment (OpenMPI's
// mpirun, MPICH's Hydra, Slurm's PMI): 1 when started alone.
int launched_ranks();

// With MPI: initialises it (the object finalizes it) and returns this rank's part. Throws when
// glide was built without MPI.
std::unique_ptr<ShardedRun> make_sharded_run(int* argc, char*** argv);

// `run` as this rank's part of the job (make_sharded_run): an error on any rank prints it and ends
// every rank, so that none waits in a collective.
int run_sharded(int argc, char** argv, int (*run)(int, char**, ShardedRun*));

}  // namespace glide::cli
