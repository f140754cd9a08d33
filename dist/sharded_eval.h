// Prediction and evaluation with a label-sharded output layer: every rank computes the hidden
// layers of every input (they are replicated) and scores its own shard's rows (bias and wide
// layer included); each input's top-k and softmax normaliser (max, sum of exponentials) of every
// shard are all-gathered and merged alike on every rank. Collective: every rank calls with the
// same inputs.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "data/dataset.h"
#include "engine/evaluator.h"
#include "engine/network.h"
#include "engine/predictor.h"
#include "engine/sharded_model.h"

namespace glide::dist {

// Top-k (global label ids, best first; ties by the smaller id) of each input over every shard,
// with the probability the model's loss gives each over all labels. `shard` holds labels `range`.
void sharded_predict(const engine::Network& shard, engine::LabelRange range,
                     std::span<const data::SparseView> inputs, std::uint32_t k,
                     std::vector<engine::Prediction>& out);

// P@k and nDCG@k (k = 1..5) of the sharded model on the first `max_points` points of `test`
// (0: all; global labels; points without labels are skipped), `batch` points at a time; PSP@k
// too with the labels' inverse `propensity`. Every rank gets the same result.
engine::EvalResult sharded_evaluate(const engine::Network& shard, engine::LabelRange range,
                                    const data::Dataset& test, std::size_t max_points = 0,
                                    const engine::InversePropensity* propensity = nullptr,
                                    std::uint32_t batch = 256);

}  // namespace glide::dist
