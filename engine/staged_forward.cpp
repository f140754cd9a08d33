#include "engine/staged_forward.h"

#include <tbb/parallel_for.h>

#include <numeric>
#include <string>
#include <vector>

#include "common/error.h"

namespace glide::engine {

void prepare_activations(const Network& net, std::size_t batch, HiddenActivations& acts) {
  const auto& h = net.config().hidden;
  if (acts.sampled.size() != h.size()) acts.sampled.resize(h.size());
  // A smaller batch (an epoch's last) reuses the rows, but only its own count as the batch: the
  // rows past it hold the previous batch's activations.
  acts.batch = batch;
  if (acts.layers.size() == h.size() && acts.capacity >= batch) return;
  acts.layers.clear();
  acts.strides.clear();
  for (auto n : h) {
    acts.strides.push_back(padded(n));
    acts.layers.emplace_back(std::max<std::size_t>(batch, 1) * padded(n));
  }
  acts.capacity = batch;
}

namespace {

// A sampled layer: each sample's active neurons from the layer's tables, then neuron by neuron
// over the pairs (each weight row read once per batch); the other neurons stay at zero.
void forward_sampled(const Network& net, std::size_t l, std::size_t B, HiddenActivations& acts,
                     const Kernels& k) {
  OutputSampler& sampler = *net.hidden_samplers[l];
  SampledLayerPairs& sp = acts.sampled[l];
  const ParamMatrix& W = net.hidden[l - 1];
  const float* bias = net.hidden_bias[l - 1].w.data();
  const float* prev = acts.layers[l - 1].data();
  const std::size_t prev_stride = acts.strides[l - 1], stride = acts.strides[l];
  if (sp.active.size() < B) sp.active.resize(B);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 8),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t s = r.begin(); s < r.end(); ++s) {
                        sampler.select(prev + s * prev_stride, sp.active[s]);
                        std::fill_n(acts.row(l, s), stride, 0.0f);
                      }
                    });
  sp.views.assign(sp.active.begin(), sp.active.begin() + B);
  sp.pairs.build(sp.views, {}, W.rows, static_cast<std::uint32_t>(B));
  sp.z.resize(sp.pairs.num_pairs());
  const auto neurons = sp.pairs.neurons();
  const std::uint32_t* rows = sp.pairs.rows();
  float* out = acts.layers[l].data();
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, neurons.size(), 16),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t i = r.begin(); i < r.end(); ++i) {
                        const std::uint32_t j = neurons[i];
                        const std::uint64_t beg = sp.pairs.neuron_begin(i),
                                            cnt = sp.pairs.neuron_begin(i + 1) - beg;
                        float* z = sp.z.data() + beg;
                        k.dot_rows(W.row(j), prev, prev_stride, rows + beg, cnt, W.cols, z);
                        for (std::uint64_t q = 0; q < cnt; ++q) {
                          const float v = z[q] + bias[j];
                          out[rows[beg + q] * stride + j] = v > 0 ? v : 0;
                        }
                      }
                    });
}

// The nonzero entries of rows [0, B) of layer l, packed per sample into `sp`. Read from the rows
// themselves, not from the active sets, so that rows a caller has moved (early exits compact the
// batch) stay right; a neuron whose ReLU was off is skipped too.
void pack_nonzeros(const HiddenActivations& acts, std::size_t l, std::size_t B,
                   SampledLayerPairs& sp) {
  const std::size_t width = acts.strides[l];
  sp.offsets.assign(B + 1, 0);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 16),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t s = r.begin(); s < r.end(); ++s) {
                        const float* h = acts.row(l, s);
                        std::uint64_t n = 0;
                        for (std::size_t j = 0; j < width; ++j) n += h[j] != 0;
                        sp.offsets[s + 1] = n;
                      }
                    });
  for (std::size_t s = 0; s < B; ++s) sp.offsets[s + 1] += sp.offsets[s];
  sp.ids.resize(sp.offsets[B]);
  sp.values.resize(sp.offsets[B]);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 16),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t s = r.begin(); s < r.end(); ++s) {
                        const float* h = acts.row(l, s);
                        std::uint64_t q = sp.offsets[s];
                        for (std::size_t j = 0; j < width; ++j)
                          if (h[j] != 0) {
                            sp.ids[q] = static_cast<std::uint32_t>(j);
                            sp.values[q++] = h[j];
                          }
                      }
                    });
}

// A dense layer after a sampled one: its input is zero outside the previous layer's active
// neurons, so each dot product reads only those (gathered) instead of the whole wide input.
void forward_after_sampled(const Network& net, std::size_t l, std::size_t B,
                           HiddenActivations& acts, const Kernels& k) {
  SampledLayerPairs& in = acts.sampled[l - 1];
  pack_nonzeros(acts, l - 1, B, in);
  const ParamMatrix& W = net.hidden[l - 1];
  const float* bias = net.hidden_bias[l - 1].w.data();
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, W.rows, 8),
                    [&](const tbb::blocked_range<std::uint32_t>& r) {
                      for (std::uint32_t j = r.begin(); j < r.end(); ++j)
                        for (std::size_t s = 0; s < B; ++s) {
                          const std::uint64_t beg = in.offsets[s];
                          const float v =
                              k.gather_dot(W.row(j), in.ids.data() + beg, in.values.data() + beg,
                                           in.offsets[s + 1] - beg) +
                              bias[j];
                          acts.row(l, s)[j] = v > 0 ? v : 0;
                        }
                    });
}

}  // namespace

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
  if (net.config().hidden_sampled(l)) {
    if (l >= net.hidden_samplers.size() || !net.hidden_samplers[l])
      fail("hidden layer " + std::to_string(l) + " is sampled but has no LSH tables");
    forward_sampled(net, l, B, acts, k);
    return;
  }
  if (l >= 2 && net.config().hidden_sampled(l - 1)) {
    forward_after_sampled(net, l, B, acts, k);
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
