// Serving a label-sharded model under mpirun: rank 0 answers HTTP (server/) through a
// ShardedPredictor, which hands each batch of inputs to every rank; every rank scores its shard
// and the merged top-k (dist/sharded_eval.h) comes back to rank 0. The other ranks wait in
// serve_shard() for rank 0's batches until it says stop.
#pragma once
#include <memory>
#include <mutex>

#include "engine/predictor.h"
#include "engine/sharded_model.h"

namespace glide::dist {

// Rank 0's predictor over its shard `range` of a label-sharded model; the other ranks must be in
// serve_shard(). Calls from several threads take turns (one batch crosses the ranks at a time).
// k is clamped to the shard's label count (Predictor::predict), which is no limit for k below
// the smallest shard's.
class ShardedPredictor final : public engine::Predictor {
 public:
  ShardedPredictor(std::shared_ptr<const engine::Network> shard, engine::LabelRange range);
  // Tells the ranks in serve_shard() to return. Call once, when no more calls will come.
  void stop_shards() const;
  // The output layer alone cannot be split across ranks after the hidden layers: throws.
  void predict_from_hidden(const engine::HiddenActivations& acts, std::size_t batch,
                           std::uint32_t k, const engine::SearchParams& params,
                           std::vector<engine::Prediction>& out) const override;

 protected:
  void predict_checked(std::span<const data::SparseView> inputs, std::uint32_t k,
                       const engine::SearchParams& params,
                       std::vector<engine::Prediction>& out) const override;

 private:
  engine::LabelRange range_;
  mutable std::mutex turn_;
};

// Ranks other than 0: scores rank 0's batches on `shard` (labels `range`) until rank 0 stops.
void serve_shard(const engine::Network& shard, engine::LabelRange range);

}  // namespace glide::dist
