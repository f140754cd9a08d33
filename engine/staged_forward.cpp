#include "engine/staged_forward.h"

#include <tbb/parallel_for.h>

#include <numeric>
#include <string>
#include <vector>

#include "common/error.h"

namespace glide::engine {

void prepare_activations(const Network& net, std::size_t batch, HiddenActivations& acts) {
  const auto& h = net.config().hidden;
  if (acts.layers.size() == h.size() && acts.batch >= batch) return;
  acts.layers.clear();
  acts.strides.clear();
  for (auto n : h) {
    acts.strides.push_back(padded(n));
    acts.layers.emplace_back(std::max<std::size_t>(batch, 1) * padded(n));
  }
  acts.batch = batch;
}

void forward_layer(const Network& net, std::size_t l, std::span<const data::SparseView> inputs,
                   std::size_t B, HiddenActivations& acts, const Kernels& k) {
  const auto& h = net.config().hidden;
  const std::uint32_t num_features = net.config().num_features;
  if (l == 0) {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 16),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                        for (std::size_t s = r.begin(); s < r.end(); ++s) {
                          const data::SparseView x = inputs[s];
                          for (std::uint32_t id : x.ids)
                            if (id >= num_features)
                              fail("input feature id " + std::to_string(id) +
                                   " >= number of features " + std::to_string(num_features));
                          float* out = acts.row(0, s);
                          k.sparse_matvec(x.ids.data(), x.values.data(), x.size(),
                                          net.input.w.data(), net.input.stride, h[0], out);
                          k.axpy(1.0f, net.input_bias.w.data(), out, h[0]);
                          k.relu(out, h[0]);
                        }
                      });
    return;
  }
  std::vector<std::uint32_t> all(B);
  std::iota(all.begin(), all.end(), 0u);
  const ParamMatrix& W = net.hidden[l - 1];
  const float* prev = acts.layers[l - 1].data();
  const std::size_t prev_stride = acts.strides[l - 1];
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, h[l], 8),
                    [&](const tbb::blocked_range<std::uint32_t>& r) {
                      std::vector<float> z(B);
                      for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
                        k.dot_rows(W.row(j), prev, prev_stride, all.data(), B, W.cols, z.data());
                        const float b = net.hidden_bias[l - 1].w[j];
                        for (std::size_t s = 0; s < B; ++s) {
                          const float v = z[s] + b;
                          acts.row(l, s)[j] = v > 0 ? v : 0;
                        }
                      }
                    });
}

}  // namespace glide::engine
