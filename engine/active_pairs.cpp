#include "engine/active_pairs.h"

#include <tbb/parallel_for.h>

#include <bit>
#include <numeric>

#include "common/error.h"

namespace glide::engine {

void ActivePairs::build(std::span<const std::span<const std::uint32_t>> own,
                        std::span<const std::uint32_t> shared, std::uint32_t num_neurons,
                        std::uint32_t batch) {
  batch_ = batch;
  own_offsets_.assign(batch + 1, 0);
  for (std::size_t s = 0; s < own.size(); ++s)
    own_offsets_[s + 1] = own_offsets_[s] + own[s].size();
  for (std::size_t s = own.size(); s < batch; ++s) own_offsets_[s + 1] = own_offsets_[s];
  const std::uint64_t total = own_offsets_[batch] + std::uint64_t{batch} * shared.size();
  if (total >= (std::uint64_t{1} << 32))
    fail("batch has too many active pairs; lower the batch size");

  // Only the entries the previous batch touched are cleared, and the active neurons are found by
  // scanning a bitmap rather than all num_neurons counters: at 670k labels a batch touches ~35%
  // of them, and the full clear-and-scan was ~4% of a training step.
  if (!clean_ || cursor_.size() != num_neurons) {
    cursor_.assign(num_neurons, 0);
    shared_index_.assign(num_neurons, 0);
    bits_.assign((std::size_t{num_neurons} + 63) / 64, 0);
  } else {
    for (std::uint32_t j : neurons_) {
      cursor_[j] = 0;
      shared_index_[j] = 0;
      bits_[j >> 6] = 0;
    }
  }
  clean_ = false;  // until this build completes
  for (std::size_t k = 0; k < shared.size(); ++k) {
    const std::uint32_t j = shared[k];
    if (shared_index_[j]) fail("shared neuron " + std::to_string(j) + " listed twice");
    shared_index_[j] = static_cast<std::uint32_t>(k + 1);
    cursor_[j] = batch;
    bits_[j >> 6] |= std::uint64_t{1} << (j & 63);
  }
  for (const auto& a : own)
    for (std::uint32_t j : a) {
      ++cursor_[j];
      bits_[j >> 6] |= std::uint64_t{1} << (j & 63);
    }

  neurons_.clear();
  neuron_offsets_.clear();
  shared_base_.assign(shared.size(), 0);
  std::uint32_t pos = 0;
  for (std::size_t w = 0; w < bits_.size(); ++w) {
    for (std::uint64_t word = bits_[w]; word; word &= word - 1) {
      const std::uint32_t j = static_cast<std::uint32_t>(w * 64 + std::countr_zero(word));
      const std::uint32_t c = cursor_[j];
      if (shared_index_[j] && c != batch)
        fail("neuron " + std::to_string(j) + " is both shared and a sample's own");
      neurons_.push_back(j);
      neuron_offsets_.push_back(pos);
      if (shared_index_[j]) shared_base_[shared_index_[j] - 1] = pos;
      cursor_[j] = pos;
      pos += c;
    }
  }
  neuron_offsets_.push_back(pos);
  rows_.resize(total);
  // Shared neurons: rows 0..batch-1, written in parallel.
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, shared.size(), 256), [&](const auto& r) {
    for (std::size_t k = r.begin(); k < r.end(); ++k)
      std::iota(rows_.begin() + shared_base_[k], rows_.begin() + shared_base_[k] + batch, 0u);
  });
  own_slots_.resize(own_offsets_[batch]);
  clean_ = true;
  for (std::size_t s = 0; s < own.size(); ++s) {
    std::uint32_t* slots = own_slots_.data() + own_offsets_[s];
    for (std::uint32_t j : own[s]) {
      const std::uint32_t slot = cursor_[j]++;
      rows_[slot] = static_cast<std::uint32_t>(s);
      *slots++ = slot;
    }
  }
}

}  // namespace glide::engine
