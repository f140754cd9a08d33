#include "engine/network.h"

#include <tbb/parallel_for.h>

#include <cmath>
#include <numeric>

#include "common/error.h"

namespace glide::engine {

Network::Network(const NetworkConfig& config) : config_(config) {
  validate(config_);
  const auto& h = config_.hidden;
  input = ParamMatrix(config_.num_features, h[0]);
  input_bias = ParamVector(padded(h[0]));
  // Glorot-uniform scales; the sparse input's fan-in is its typical nonzero count, not the
  // feature count, so the input layer uses a larger scale than dense Glorot would give.
  input.init_uniform(std::sqrt(6.0f / (100.0f + h[0])), derive_seed(config_.seed, 1));
  for (std::size_t l = 1; l < h.size(); ++l) {
    hidden.emplace_back(h[l], h[l - 1]);
    hidden.back().init_uniform(std::sqrt(6.0f / (h[l] + h[l - 1])),
                               derive_seed(config_.seed, 10 + l));
    hidden_bias.emplace_back(padded(h[l]));
  }
  output = ParamMatrix(config_.num_labels, h.back());
  output_bias = ParamVector(config_.num_labels);
  const float scale = std::sqrt(6.0f / (h.back() + 1000.0f));
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, config_.num_labels, 4096),
                    [&](const tbb::blocked_range<std::uint32_t>& r) {
                      for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
                        Rng rng(derive_seed(config_.seed, 1000 + j));
                        float* p = output.row(j);
                        for (std::uint32_t c = 0; c < output.cols; ++c)
                          p[c] = scale * (2 * rng.uniformf() - 1);
                      }
                    });
}

void Network::forward_hidden(std::span<const data::SparseView> inputs, HiddenActivations& acts,
                             const Kernels& k) const {
  const auto& h = config_.hidden;
  const std::size_t B = inputs.size();
  if (acts.layers.size() != h.size() || acts.batch < B) {
    acts.layers.clear();
    acts.strides.clear();
    for (auto n : h) {
      acts.strides.push_back(padded(n));
      acts.layers.emplace_back(std::max<std::size_t>(B, 1) * padded(n));
    }
    acts.batch = B;
  }
  // Input layer: each sample gathers the rows of its features.
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 16),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t s = r.begin(); s < r.end(); ++s) {
                        const data::SparseView x = inputs[s];
                        for (std::uint32_t id : x.ids)
                          if (id >= config_.num_features)
                            fail("input feature id " + std::to_string(id) +
                                 " >= number of features " + std::to_string(config_.num_features));
                        float* out = acts.row(0, s);
                        k.sparse_matvec(x.ids.data(), x.values.data(), x.size(), input.w.data(),
                                        input.stride, h[0], out);
                        k.axpy(1.0f, input_bias.w.data(), out, h[0]);
                        k.relu(out, h[0]);
                      }
                    });
  // Dense hidden layers, neuron by neuron so each weight row is read once per batch.
  if (h.size() > 1) {
    std::vector<std::uint32_t> all(B);
    std::iota(all.begin(), all.end(), 0u);
    for (std::size_t l = 1; l < h.size(); ++l) {
      const ParamMatrix& W = hidden[l - 1];
      const float* prev = acts.layers[l - 1].data();
      const std::size_t prev_stride = acts.strides[l - 1];
      tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, h[l], 8),
                        [&](const tbb::blocked_range<std::uint32_t>& r) {
                          std::vector<float> z(B);
                          for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
                            k.dot_rows(W.row(j), prev, prev_stride, all.data(), B, W.cols,
                                       z.data());
                            const float b = hidden_bias[l - 1].w[j];
                            for (std::size_t s = 0; s < B; ++s) {
                              const float v = z[s] + b;
                              acts.row(l, s)[j] = v > 0 ? v : 0;
                            }
                          }
                        });
    }
  }
}

}  // namespace glide::engine
