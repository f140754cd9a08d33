// What the trainer of one shard of a label-sharded output layer shares with the other shards
// (ranks) once per batch. Every rank sees the same batch and holds the same lower layers; each
// owns a contiguous range of the output neurons (engine/sharded_model.h). The softmax over every
// label needs the per-sample max and sum of exponentials over all shards, and the gradient with
// respect to the last hidden layer is the sum of every shard's part. dist/ implements it over MPI;
// the tests implement it in memory.
#pragma once
#include <span>

namespace glide::engine {

class ShardExchange {
 public:
  virtual ~ShardExchange() = default;
  // Element-wise over every rank, in place; every rank receives the same values. Collective:
  // every rank calls the same operations in the same order with the same lengths.
  virtual void max(std::span<float> values) = 0;
  virtual void sum(std::span<float> values) = 0;
  virtual void sum(std::span<double> values) = 0;
};

}  // namespace glide::engine
