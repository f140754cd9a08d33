// The network: sparse input -> dense ReLU hidden layers -> a (sampled) output layer over all
// labels. Holds the parameters and computes the hidden activations of a batch.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "data/dataset.h"
#include "engine/active_pairs.h"
#include "engine/config.h"
#include "engine/kernels.h"
#include "engine/output_sampler.h"
#include "engine/output_weights.h"
#include "engine/params.h"

namespace glide::engine {

// The neurons a sampled hidden layer computed for a batch (what its backward pass revisits).
struct SampledLayerPairs {
  std::vector<std::vector<std::uint32_t>> active;  // per sample
  std::vector<std::span<const std::uint32_t>> views;
  ActivePairs pairs;
  std::vector<float> z;  // pre-activations, one per pair
  // The layer's nonzero outputs packed per sample, for the next layer to read only those (filled
  // by that layer's forward pass): sample s's are ids[offsets[s] .. offsets[s+1]), their
  // activations in values.
  std::vector<std::uint64_t> offsets;
  std::vector<std::uint32_t> ids;
  std::vector<float> values;
};

// Activations of every hidden layer for a batch: layer l is batch x stride(l) floats (zeros for
// the neurons a sampled layer did not compute).
struct HiddenActivations {
  std::vector<AlignedArray<float>> layers;
  std::vector<std::size_t> strides;
  std::vector<SampledLayerPairs> sampled;  // [l]: used when layer l is sampled
  std::size_t batch = 0;
  const float* row(std::size_t l, std::size_t s) const { return layers[l].data() + s * strides[l]; }
  float* row(std::size_t l, std::size_t s) { return layers[l].data() + s * strides[l]; }
  const float* last(std::size_t s) const { return row(layers.size() - 1, s); }
};

// What a new Network allocates: training needs everything, randomly initialised; a model being
// loaded for inference needs neither Adam moments nor random weights, nor fp32 output rows when
// the file holds int8 or bf16 ones (at 670k labels each fp32 copy is 343 MB).
struct NetworkStorage {
  bool moments = true;
  bool random_init = true;
  bool f32_output = true;
};

class Network {
 public:
  explicit Network(const NetworkConfig& config, NetworkStorage storage = {});

  const NetworkConfig& config() const { return config_; }
  std::uint32_t num_labels() const { return config_.num_labels; }
  std::uint32_t last_hidden() const { return config_.hidden.back(); }

  // (Re)builds the LSH tables of the sampled hidden layers from their current weights; `train`
  // gives their refresh schedule. The constructor and the model loader call it; so does a
  // Trainer, for tables that refresh while it trains.
  void build_hidden_samplers(const TrainConfig& train);

  // Adds zeroed Adam moments where a network loaded for inference has none (training it).
  void ensure_moments();
  bool has_moments() const { return input.has_moments(); }

  // Hidden activations of the given inputs (each a sparse vector), computed in parallel on the
  // current TBB arena. `acts` is resized as needed and reused across calls.
  void forward_hidden(std::span<const data::SparseView> inputs, HiddenActivations& acts,
                      const Kernels& k) const;

  // Input layer: one row of hidden[0] weights per input feature (the sparse input gathers rows).
  ParamMatrix input;
  ParamVector input_bias;
  // Hidden layer l >= 1: hidden[l] rows of hidden[l-1] weights.
  std::vector<ParamMatrix> hidden;
  std::vector<ParamVector> hidden_bias;
  // [l]: the LSH tables of sampled hidden layer l, null for dense layers. Shared by copies of the
  // network (inference only queries them).
  std::vector<std::shared_ptr<OutputSampler>> hidden_samplers;
  // Output layer: one row of last_hidden() weights per label.
  ParamMatrix output;
  ParamVector output_bias;
  // Int8 output rows (engine/output_weights.h, `glide quantize`): when set, `output` is empty
  // and the network is for inference only. Shared so that copies of the network stay cheap.
  std::shared_ptr<const QuantizedRows> output_int8;
  // bf16 output rows (training with --precision bf16 or bf16-w, or `glide quantize --to bf16`):
  // when set (rows > 0), `output` is empty. Trainable when it holds Adam moments.
  Bf16Rows output_bf16;
  Precision output_precision() const {
    return output_int8 ? Precision::kInt8 : output_bf16.rows ? Precision::kBF16 : Precision::kF32;
  }
  // Adam steps taken so far (the bias-correction clock).
  std::uint64_t step = 0;

 private:
  NetworkConfig config_;
};

}  // namespace glide::engine
