#include "dist/mpi_world.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "common/error.h"

namespace glide::dist {

World::World(int* argc, char*** argv) {
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    fail("MPI_Init_thread failed");
  if (provided < MPI_THREAD_SERIALIZED) fail("this MPI cannot be called from more than one thread");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

World::~World() {
  MPI_Finalize();
}

void World::barrier() const {
  MPI_Barrier(MPI_COMM_WORLD);
}

bool World::all(bool ok) const {
  int v = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return v != 0;
}

bool World::any(bool flag) const {
  int v = flag ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return v != 0;
}

double World::broadcast(double value) const {
  MPI_Bcast(&value, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return value;
}

std::vector<std::uint32_t> World::all_gather(std::span<const std::uint32_t> mine) const {
  if (mine.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    fail("all_gather: " + std::to_string(mine.size()) + " values on one rank exceed MPI's count");
  std::vector<int> sizes(static_cast<std::size_t>(size_)), offsets(sizes.size(), 0);
  const int own = static_cast<int>(mine.size());
  MPI_Allgather(&own, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::size_t total = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    if (total > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      fail("all_gather: " + std::to_string(total) + " values in all exceed MPI's count");
    offsets[r] = static_cast<int>(total);
    total += static_cast<std::size_t>(sizes[r]);
  }
  std::vector<std::uint32_t> all(total);
  MPI_Allgatherv(mine.data(), own, MPI_UINT32_T, all.data(), sizes.data(), offsets.data(),
                 MPI_UINT32_T, MPI_COMM_WORLD);
  return all;
}

void World::abort(const std::string& message, int code) const {
  std::fprintf(stderr, "glide: rank %d of %d: %s\n", rank_, size_, message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

namespace {

void allreduce(void* data, std::size_t n, MPI_Datatype type, MPI_Op op) {
  // Chunks below INT_MAX elements (MPI counts are int).
  constexpr std::size_t kChunk = std::size_t{1} << 30;
  int size = 0;
  MPI_Type_size(type, &size);
  auto* p = static_cast<char*>(data);
  for (std::size_t done = 0; done < n; done += kChunk) {
    const std::size_t c = std::min(kChunk, n - done);
    MPI_Allreduce(MPI_IN_PLACE, p + done * static_cast<std::size_t>(size), static_cast<int>(c),
                  type, op, MPI_COMM_WORLD);
  }
}

// allreduce, returning the seconds it took.
double timed_allreduce(void* data, std::size_t n, MPI_Datatype type, MPI_Op op) {
  const auto t0 = std::chrono::steady_clock::now();
  allreduce(data, n, type, op);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void MpiExchange::count(std::size_t bytes, double seconds) {
  bytes_ += bytes;
  seconds_ += seconds;
  ++reductions_;
}

void MpiExchange::max(std::span<float> v) {
  count(v.size_bytes(), timed_allreduce(v.data(), v.size(), MPI_FLOAT, MPI_MAX));
}

void MpiExchange::sum(std::span<float> v) {
  count(v.size_bytes(), timed_allreduce(v.data(), v.size(), MPI_FLOAT, MPI_SUM));
}

void MpiExchange::sum(std::span<double> v) {
  count(v.size_bytes(), timed_allreduce(v.data(), v.size(), MPI_DOUBLE, MPI_SUM));
}

}  // namespace glide::dist
