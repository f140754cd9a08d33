// The hidden layers one at a time, over a batch that may shrink between layers (early exits: a
// learned cache answers some inputs after layer l and only the rest go on). Same arithmetic as
// Network::forward_hidden, so an input that goes all the way gets the same activations.
#pragma once
#include <cstddef>
#include <span>

#include "data/dataset.h"
#include "engine/kernels.h"
#include "engine/network.h"

namespace glide::engine {

// Sizes `acts` for `batch` rows of every hidden layer of `net` (reuses buffers large enough).
void prepare_activations(const Network& net, std::size_t batch, HiddenActivations& acts);

// Computes hidden layer `l` for rows [0, batch): layer 0 from inputs[0..batch), layer l >= 1 from
// the rows of layer l - 1. Runs on the current TBB arena.
void forward_layer(const Network& net, std::size_t l, std::span<const data::SparseView> inputs,
                   std::size_t batch, HiddenActivations& acts, const Kernels& k);

}  // namespace glide::engine
