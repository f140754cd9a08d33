// The MPI job a process runs in (dist/ is built with GLIDE_MPI): initialisation, the rank's place,
// a few collectives, and the engine's ShardExchange over MPI. Errors are fatal for the whole job
// (MPI_ERRORS_ARE_FATAL): a rank that fails or dies ends every rank, mpirun names it and exits
// non-zero, instead of the others waiting forever in a collective.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/shard_exchange.h"

namespace glide::dist {

class World {
 public:
  // MPI_Init_thread (MPI called by one thread at a time: a server's threads take turns);
  // MPI_Finalize on destruction.
  World(int* argc, char*** argv);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  void barrier() const;
  // Whether `ok` holds on every rank.
  bool all(bool ok) const;
  // Whether `flag` holds on any rank.
  bool any(bool flag) const;
  // Rank 0's `value` on every rank.
  double broadcast(double value) const;
  // Every rank's `mine`, one after the other in rank order, on every rank.
  std::vector<std::uint32_t> all_gather(std::span<const std::uint32_t> mine) const;
  // Prints "glide: rank R of N: MESSAGE" to stderr and ends the whole job with `code`.
  [[noreturn]] void abort(const std::string& message, int code = 1) const;

 private:
  int rank_ = 0, size_ = 1;
};

// engine::ShardExchange over MPI_COMM_WORLD (in-place all-reduce), counting the bytes each rank
// contributes and the time it spends in the reductions (waiting for slower ranks included).
class MpiExchange final : public engine::ShardExchange {
 public:
  void max(std::span<float> values) override;
  void sum(std::span<float> values) override;
  void sum(std::span<double> values) override;
  // Bytes this rank contributed to reductions so far (the payload, not MPI's own traffic).
  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t reductions() const { return reductions_; }
  double seconds() const { return seconds_; }

 private:
  void count(std::size_t bytes, double seconds);
  std::uint64_t bytes_ = 0, reductions_ = 0;
  double seconds_ = 0;
};

}  // namespace glide::dist
