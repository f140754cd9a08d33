#include "dist/replicas.h"

#include <mpi.h>

#include <algorithm>

namespace glide::dist {

namespace {

void broadcast(AlignedArray<float>& a) {
  constexpr std::size_t kChunk = std::size_t{1} << 30;  // MPI counts are int
  for (std::size_t done = 0; done < a.size(); done += kChunk)
    MPI_Bcast(a.data() + done, static_cast<int>(std::min(kChunk, a.size() - done)), MPI_FLOAT, 0,
              MPI_COMM_WORLD);
}

template <class P>
void broadcast_params(P& p) {
  broadcast(p.w);
  broadcast(p.m);  // empty without optimizer state: the same on every rank
  broadcast(p.v);
}

}  // namespace

bool replicas_can_drift(const engine::NetworkConfig& net, const engine::TrainConfig& train) {
  bool sampled = false;
  for (std::size_t l = 1; l < net.hidden.size(); ++l) sampled = sampled || net.hidden_sampled(l);
  return sampled || (net.hidden.size() > 1 && train.threads != 1);
}

void broadcast_lower_layers(engine::Network& net) {
  broadcast_params(net.input);
  broadcast_params(net.input_bias);
  for (auto& h : net.hidden) broadcast_params(h);
  for (auto& b : net.hidden_bias) broadcast_params(b);
}

}  // namespace glide::dist
