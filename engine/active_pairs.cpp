#include "engine/active_pairs.h"

#include "common/error.h"

namespace glide::engine {

void ActivePairs::build(std::span<const std::span<const std::uint32_t>> active,
                        std::uint32_t num_neurons) {
  const std::size_t B = active.size();
  sample_offsets_.assign(B + 1, 0);
  for (std::size_t s = 0; s < B; ++s)
    sample_offsets_[s + 1] = sample_offsets_[s] + active[s].size();
  const std::uint64_t total = sample_offsets_[B];
  if (total >= (std::uint64_t{1} << 32))
    fail("batch has too many active pairs; lower the batch size");
  cursor_.assign(num_neurons, 0);
  for (const auto& a : active)
    for (std::uint32_t j : a) ++cursor_[j];
  neurons_.clear();
  neuron_offsets_.clear();
  std::uint32_t pos = 0;
  for (std::uint32_t j = 0; j < num_neurons; ++j) {
    const std::uint32_t c = cursor_[j];
    if (!c) continue;
    neurons_.push_back(j);
    neuron_offsets_.push_back(pos);
    cursor_[j] = pos;
    pos += c;
  }
  neuron_offsets_.push_back(pos);
  rows_.resize(total);
  sample_slots_.resize(total);
  for (std::size_t s = 0; s < B; ++s) {
    std::uint32_t* slots = sample_slots_.data() + sample_offsets_[s];
    for (std::uint32_t j : active[s]) {
      const std::uint32_t slot = cursor_[j]++;
      rows_[slot] = static_cast<std::uint32_t>(s);
      *slots++ = slot;
    }
  }
}

void ActivePairs::build_dense(std::uint32_t batch, std::uint32_t num_neurons) {
  const std::uint64_t total = std::uint64_t{batch} * num_neurons;
  if (total >= (std::uint64_t{1} << 32)) fail("dense batch too large; lower the batch size");
  neurons_.resize(num_neurons);
  neuron_offsets_.resize(num_neurons + 1);
  rows_.resize(total);
  for (std::uint32_t j = 0; j < num_neurons; ++j) {
    neurons_[j] = j;
    neuron_offsets_[j] = std::uint64_t{j} * batch;
    for (std::uint32_t s = 0; s < batch; ++s) rows_[std::uint64_t{j} * batch + s] = s;
  }
  neuron_offsets_[num_neurons] = total;
  sample_offsets_.resize(batch + 1);
  sample_slots_.resize(total);
  for (std::uint32_t s = 0; s <= batch; ++s) sample_offsets_[s] = std::uint64_t{s} * num_neurons;
  for (std::uint32_t s = 0; s < batch; ++s)
    for (std::uint32_t j = 0; j < num_neurons; ++j)
      sample_slots_[std::uint64_t{s} * num_neurons + j] =
          static_cast<std::uint32_t>(std::uint64_t{j} * batch + s);
}

}  // namespace glide::engine
