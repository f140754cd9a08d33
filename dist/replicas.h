// The lower layers (input and hidden layers, with their optimizer state) that every rank of a
// label-sharded run holds a replica of. Every rank applies the same update from the same
// all-reduced gradient, so the replicas stay equal bit for bit where the update is computed in a
// fixed order (one hidden layer, or one thread per rank). With several hidden layers on several
// threads the per-thread partial gradients are summed in the order the threads finish, and
// sampled hidden layers refresh their tables in the background: replicas then drift apart by
// rounding, and are made equal again from rank 0's.
#pragma once
#include "engine/config.h"
#include "engine/network.h"

namespace glide::dist {

// Whether replicas of a network of `net` trained with `train` can drift apart (above).
bool replicas_can_drift(const engine::NetworkConfig& net, const engine::TrainConfig& train);

// Rank 0's input and hidden layers (weights, biases, optimizer moments) on every rank. Collective.
void broadcast_lower_layers(engine::Network& net);

}  // namespace glide::dist
