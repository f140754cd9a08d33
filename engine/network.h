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
#include "engine/output_matrix.h"
#include "engine/output_sampler.h"
#include "engine/params.h"
#include "engine/wide_layer.h"

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
  // The inputs of the rows (forward_hidden's; valid while the caller's inputs are): what the wide
  // layer scores.
  std::vector<data::SparseView> inputs;
  std::size_t batch = 0;     // rows of the current batch (what backward passes visit)
  std::size_t capacity = 0;  // rows allocated: the largest batch so far
  const float* row(std::size_t l, std::size_t s) const { return layers[l].data() + s * strides[l]; }
  float* row(std::size_t l, std::size_t s) { return layers[l].data() + s * strides[l]; }
  const float* last(std::size_t s) const { return row(layers.size() - 1, s); }
};

// What a new Network allocates: training needs everything, randomly initialised; a model being
// loaded needs neither Adam moments (for inference) nor random weights, nor an output matrix:
// the loader makes the one the file holds (at 670k labels each fp32 copy is 343 MB).
struct NetworkStorage {
  bool moments = true;
  bool random_init = true;
  bool f32_output = true;  // false: `output` stays null for the caller to set
  // The global id of output row 0: a shard of a label-sharded layer (engine/sharded_model.h)
  // starts its rows as those labels' rows of the whole layer.
  std::uint32_t first_label = 0;
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
  // Output layer: one row of last_hidden() weights per label, in whatever storage it has (fp32,
  // bf16 or int8: engine/output_matrix.h), and one bias per label.
  OutputMatrixPtr output;
  ParamVector output_bias;
  // The wide layer (engine/wide_layer.h); empty unless NetworkConfig::wide.
  WideLayer wide;
  // Adam steps taken so far (the bias-correction clock).
  std::uint64_t step = 0;

 private:
  NetworkConfig config_;
};

}  // namespace glide::engine
