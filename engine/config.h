// Every knob of a network and of its training, read from JSON and flags, saved in the model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace glide::engine {

// How the output layer picks the neurons it computes for each sample during training.
enum class OutputSampling {
  kLsh,     // LSH tables over the output neurons' weights (SLIDE)
  kRandom,  // uniformly random negatives shared by the batch (plain sampled softmax)
  kDense,   // every neuron (exact softmax)
};
enum class LossKind { kSoftmax, kSigmoid };

struct LshConfig {
  std::string family = "dwta";  // simhash | wta | dwta | doph
  std::uint32_t K = 6;
  std::uint32_t L = 50;
  std::uint32_t range_pow = 15;
  std::uint32_t bucket_size = 32;
  std::string insert_policy = "fifo";  // fifo | reservoir
  std::uint32_t simhash_ratio = 3;
  std::uint32_t bin_size = 8;
  std::string strategy = "union";  // union | topk | threshold
  std::uint32_t min_count = 2;     // threshold strategy
};

// How hidden layer l >= 1 chooses the neurons it computes. A sampled layer owns LSH tables over
// its neurons' weight rows, queried with the previous layer's activations, in training and in
// inference alike (its successors are trained on sparse activations and expect them). The first
// hidden layer reads the sparse input and stays dense: its weights are stored one row per input
// feature, so a neuron's weight vector is a column spread over every feature row.
struct HiddenSampling {
  bool sampled = false;    // "lsh"; false: "dense"
  double sparsity = 0.05;  // fraction of the layer's neurons active per sample
  // Small layers want few, well-filled buckets: 2 DWTA bins of 8 per table (64 buckets), the
  // candidates found in the most tables first (measured: docs/training.md).
  LshConfig lsh{.family = "dwta",
                .K = 2,
                .L = 16,
                .range_pow = 6,
                .bucket_size = 64,
                .insert_policy = "fifo",
                .simhash_ratio = 3,
                .bin_size = 8,
                .strategy = "topk",
                .min_count = 2};
};

struct NetworkConfig {
  std::uint32_t num_features = 0;
  std::uint32_t num_labels = 0;
  std::vector<std::uint32_t> hidden = {128};
  // Empty (every hidden layer dense) or one entry per hidden layer.
  std::vector<HiddenSampling> hidden_sampling;
  bool hidden_sampled(std::size_t l) const {
    return l < hidden_sampling.size() && hidden_sampling[l].sampled;
  }
  LossKind loss = LossKind::kSoftmax;
  OutputSampling sampling = OutputSampling::kLsh;
  double sparsity = 0.005;  // fraction of output neurons active per sample
  // Sampled inference: the share of the budget given to the labels with the largest bias before
  // the LSH candidates (docs/training.md: the tables alone miss many top labels).
  double prior_fraction = 0.5;
  LshConfig lsh;
  std::uint64_t seed = 1;
};

struct TrainConfig {
  std::string optimizer = "adam";  // adam | sgd
  // Storage and arithmetic of the output layer (docs/quantization.md): fp32; bf16-act (bf16
  // last-hidden activations, fp32 weights); bf16 (bf16 weights, Adam moments and activations,
  // stochastic rounding); bf16-w (bf16 weights and activations, fp32 Adam moments).
  std::string precision = "fp32";
  double lr = 1e-2;
  // "constant", or "linear": lr falls linearly to lr_final * lr at the end of `epochs`.
  std::string lr_schedule = "linear";
  double lr_final = 0.1;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-7;  // eps: see docs/training.md
  std::uint32_t batch = 256;
  double epochs = 1;          // may be fractional
  std::uint32_t threads = 0;  // 0: all cores
  std::uint64_t seed = 1;
  // Tables are refreshed after `rebuild_every` batches, that interval growing by
  // `rebuild_growth` after each refresh (SLIDE's schedule); new hash functions every
  // `rehash_every` samples (0: never).
  std::uint32_t rebuild_every = 200;
  double rebuild_growth = 1.1;
  std::uint64_t rehash_every = 0;
  // Sampled softmax: "logq" corrects each shared negative's logit by -log of its probability of
  // being sampled (engine/logq_correction.h); "none" leaves logits as they are.
  std::string sampled_correction = "none";
  double max_seconds = 0;        // stop after this wall time (0: no limit)
  std::uint32_t eval_every = 0;  // batches between quick P@1 checks (0: each epoch)
  std::uint32_t eval_points = 1000;
};

struct Config {
  NetworkConfig net;
  TrainConfig train;
};

// JSON round trip. Unknown keys and wrong types are errors naming the key (`where` is the file).
std::string to_json(const Config& c, int indent = 2);
Config config_from_json(const std::string& json, const std::string& where);
// Applies the keys present in `json` over `c`.
void merge_json(Config& c, const std::string& json, const std::string& where);
// Throws glide::Error naming the first invalid field.
void validate(const NetworkConfig& c);
void validate(const TrainConfig& c);

const char* name(OutputSampling s);
const char* name(LossKind l);
OutputSampling parse_sampling(const std::string& s);
LossKind parse_loss(const std::string& s);

}  // namespace glide::engine
