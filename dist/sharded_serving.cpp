#include "dist/sharded_serving.h"

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "common/error.h"
#include "dist/sharded_eval.h"

namespace glide::dist {

namespace {

// What rank 0 broadcasts before each batch: [command, k, inputs, nonzeros].
enum : std::uint64_t { kStop = 0, kPredict = 1 };

void bcast_header(std::uint64_t (&h)[4]) {
  MPI_Bcast(h, 4, MPI_UINT64_T, 0, MPI_COMM_WORLD);
}

// A batch of sparse inputs in CSR form, the same on every rank after broadcast().
struct Batch {
  std::vector<std::uint64_t> offsets;
  std::vector<std::uint32_t> ids;
  std::vector<float> values;
  std::vector<data::SparseView> views;

  void broadcast() {
    MPI_Bcast(offsets.data(), static_cast<int>(offsets.size()), MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(ids.data(), static_cast<int>(ids.size()), MPI_UINT32_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(values.data(), static_cast<int>(values.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
    views.clear();
    for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
      const std::size_t b = offsets[s], n = offsets[s + 1] - b;
      views.push_back({{ids.data() + b, n}, {values.data() + b, n}});
    }
  }
};

}  // namespace

ShardedPredictor::ShardedPredictor(std::shared_ptr<const engine::Network> shard,
                                   engine::LabelRange range)
    : Predictor(std::move(shard)), range_(range) {}

void ShardedPredictor::predict_checked(std::span<const data::SparseView> inputs, std::uint32_t k,
                                       const engine::SearchParams&,
                                       std::vector<engine::Prediction>& out) const {
  Batch batch;
  batch.offsets.push_back(0);
  for (const data::SparseView& x : inputs) {
    batch.ids.insert(batch.ids.end(), x.ids.begin(), x.ids.end());
    batch.values.insert(batch.values.end(), x.values.begin(), x.values.end());
    batch.offsets.push_back(batch.ids.size());
  }
  if (batch.ids.size() > static_cast<std::size_t>(INT32_MAX))
    fail("a batch of " + std::to_string(batch.ids.size()) + " nonzeros is too large to send");
  std::lock_guard turn(turn_);
  std::uint64_t header[4] = {kPredict, k, inputs.size(), batch.ids.size()};
  bcast_header(header);
  batch.broadcast();
  sharded_predict(network(), range_, batch.views, k, out);
}

void ShardedPredictor::predict_from_hidden(const engine::HiddenActivations&, std::size_t,
                                           std::uint32_t, const engine::SearchParams&,
                                           std::vector<engine::Prediction>&) const {
  fail("a label-sharded model predicts from inputs only (its output layer spans the ranks)");
}

void ShardedPredictor::stop_shards() const {
  std::lock_guard turn(turn_);
  std::uint64_t header[4] = {kStop, 0, 0, 0};
  bcast_header(header);
}

void serve_shard(const engine::Network& shard, engine::LabelRange range) {
  std::vector<engine::Prediction> out;
  for (;;) {
    std::uint64_t header[4];
    bcast_header(header);
    if (header[0] == kStop) return;
    Batch batch;
    batch.offsets.resize(header[2] + 1);
    batch.ids.resize(header[3]);
    batch.values.resize(header[3]);
    batch.broadcast();
    sharded_predict(shard, range, batch.views, static_cast<std::uint32_t>(header[1]), out);
  }
}

}  // namespace glide::dist
