// Every knob of a network and of its training, read from JSON and flags, saved in the model.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hashing/active_set_sampler.h"
#include "hashing/bucket_tables.h"
#include "hashing/hash_config.h"

namespace glide::engine {

// How the output layer picks the neurons it computes for each sample during training.
enum class OutputSampling {
  kLsh,     // LSH tables over the output neurons' weights (SLIDE)
  kRandom,  // uniformly random negatives shared by the batch (plain sampled softmax)
  kDense,   // every neuron (exact softmax)
};
// Where the LSH sampler's hard negatives go while training (OutputSampling::kLsh).
enum class LshNegatives {
  kSample,  // "sample": each sample computes its own table candidates
  kBatch,   // "batch": the candidates most samples of the batch retrieved, shared by all of them
};
enum class LossKind { kSoftmax, kSigmoid };
// Whether a network has the wide layer (engine/wide_layer.h). kAuto: a new model checks it
// against the network alone on held-out training points before training (engine/wide_check.h)
// and keeps the better one; a network whose check has not run (a sharded run, a model made but
// not trained) has it. kTail: the network alone's model, plus a wide layer started at zero over
// the rare labels only (those with at most NetworkConfig::wide_tail_points training points), at
// the network alone's lrs; what kAuto trains where the network alone wins.
enum class WideMode { kOff, kOn, kAuto, kTail };
enum class Optimizer { kAdam, kSgd, kAdagrad };
// Storage and arithmetic of the output layer while training (docs/quantization.md); not the
// storage of a saved inference model (engine::Precision, which includes int8).
enum class TrainPrecision {
  kF32,      // "fp32"
  kBF16Act,  // "bf16-act": bf16 last-hidden activations, fp32 weights
  kBF16,     // "bf16": bf16 weights, Adam moments and activations, stochastic rounding
  kBF16W,    // "bf16-w": bf16 weights and activations, fp32 Adam moments
};
enum class LrSchedule {
  kConstant,  // "constant"
  kLinear,    // "linear": lr falls linearly to lr_final * lr at the end of `epochs`
};
// Sampled softmax: kLogQ ("logq") corrects each shared negative's logit by -log of its
// probability of being sampled (engine/logq_correction.h); kNone ("none") leaves logits as they
// are.
enum class SampledCorrection { kNone, kLogQ };

// The fields of every struct below, with their JSON keys, flags and ranges, are listed once in
// engine/config_fields.h; defaults are the member initializers here.
struct LshConfig {
  hashing::HashKind family = hashing::HashKind::kDwta;
  std::uint32_t K = 6;
  std::uint32_t L = 8;  // output layer: docs/training.md, "Tables and budget"
  std::uint32_t range_pow = 15;
  std::uint32_t bucket_size = 32;
  hashing::InsertPolicy insert_policy = hashing::InsertPolicy::kFifo;
  std::uint32_t simhash_ratio = 3;
  std::uint32_t bin_size = 8;
  hashing::SampleStrategy strategy = hashing::SampleStrategy::kUnion;
  std::uint32_t min_count = 2;  // threshold strategy
  friend bool operator==(const LshConfig&, const LshConfig&) = default;
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
  LshConfig lsh{.family = hashing::HashKind::kDwta,
                .K = 2,
                .L = 16,
                .range_pow = 6,
                .bucket_size = 64,
                .insert_policy = hashing::InsertPolicy::kFifo,
                .simhash_ratio = 3,
                .bin_size = 8,
                .strategy = hashing::SampleStrategy::kTopK,
                .min_count = 2};
  friend bool operator==(const HiddenSampling&, const HiddenSampling&) = default;
};

inline constexpr double kWideNormPowerAuto = -1;
inline constexpr double kWideShareRoundsAuto = -1;
inline constexpr double kWideContrastAuto = -1;

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
  LshNegatives lsh_negatives = LshNegatives::kBatch;
  // With lsh_negatives "batch": every k-th sample of the (shuffled) batch queries the tables, and
  // the candidates most of those samples retrieved are shared (docs/training.md: 4 keeps the
  // accuracy of 1 and cuts the queries' cost by 4).
  std::uint32_t lsh_query_every = 4;
  double sparsity = 0.0025;  // fraction of output neurons active per sample
  // Sampled inference: the share of the budget given to the labels with the largest bias before
  // the LSH candidates (docs/training.md: the tables alone miss many top labels).
  double prior_fraction = 0.5;
  LshConfig lsh;
  // The wide layer (engine/wide_layer.h): sparse input -> label weights beside the hidden layers,
  // built from the training data's label centroids when training starts.
  WideMode wide = WideMode::kAuto;
  std::uint32_t wide_max_per_label = 256;
  double wide_min_weight = 0.1;
  double wide_init = 30;
  // The power of each label's norm its starting weights are divided by (WideOptions::norm_power):
  // one of kWideNormPowerNames' values; kWideNormPowerAuto chooses on held-out training points.
  double wide_norm_power = kWideNormPowerAuto;
  // Rounds of splitting each training point's inputs among its labels before the centroids are
  // summed (WideOptions::share_rounds): 0, 1 or 2; kWideShareRoundsAuto chooses with the norm
  // power.
  double wide_share_rounds = kWideShareRoundsAuto;
  // How much of its nearest labels' mean centroid each label's start gives up
  // (WideOptions::contrast): 0 or 1; kWideContrastAuto chooses with the norm power.
  double wide_contrast = kWideContrastAuto;
  // kTail: the labels with at most this many training points get wide weights (docs/training.md,
  // "The rare labels' path").
  std::uint32_t wide_tail_points = 20;
  std::uint64_t seed = 1;
  friend bool operator==(const NetworkConfig&, const NetworkConfig&) = default;
};

// Whether a network of this config has (or will build) the wide layer.
inline bool has_wide(const NetworkConfig& n) {
  return n.wide != WideMode::kOff;
}
// Whether its wide layer starts at the labels' centroids and carries the model (on, auto), rather
// than the network carrying it (off, tail): that sets the lrs (with_network_defaults).
inline bool wide_leads(WideMode mode) {
  return mode == WideMode::kOn || mode == WideMode::kAuto;
}

struct TrainConfig {
  Optimizer optimizer = Optimizer::kAdam;  // the hidden layers' (and the input layer's)
  // The output layer's rows and biases: Adagrad, whose steps on a row shrink as the row is
  // touched again, keeps multi-epoch training stable where Adam's do not (docs/training.md).
  Optimizer output_optimizer = Optimizer::kAdagrad;
  // 0 in output_lr, output_eps and lr: the value measured for the network, which
  // differs with and without a wide layer (with_network_defaults; docs/training.md).
  double output_lr = 0;  // 0: 0.002 beside the wide layer, 0.035 without it
  // The output layer's optimizer epsilon. Gradients far below it take proportionally small steps
  // instead of being normalised to full ones: beside a wide layer that already fits the training
  // points, the output layer's gradients are tiny and normalised steps turn them into noise
  // (docs/training.md).
  double output_eps = 0;  // 0: 0.1 beside the wide layer, 1e-7 without it
  // The wide layer's (Adagrad; follows the lr schedule). 0: 0.05 for a wide layer started at the
  // centroids, 0.5 for the rare labels' path started at zero (wide tail).
  double wide_lr = 0;
  TrainPrecision precision = TrainPrecision::kF32;
  double lr = 0;  // 0: 3e-4 beside the wide layer, 0.01 without it
  LrSchedule lr_schedule = LrSchedule::kLinear;
  double lr_final = 0.1;
  // The lr is also multiplied by lr_decay per epoch done (continuously, by samples): a run of
  // more epochs spends no longer at a high lr than a shorter one, so it does not memorise the
  // training points where a shorter one stops (docs/training.md, "Over more epochs").
  double lr_decay = 0.7;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-7;  // eps: see docs/training.md
  std::uint32_t batch = 256;
  double epochs = 5;          // may be fractional; docs/training.md
  std::uint32_t threads = 0;  // 0: all cores
  std::uint64_t seed = 1;
  // Tables are refreshed after `rebuild_every` batches, that interval growing by
  // `rebuild_growth` after each refresh (SLIDE's schedule); new hash functions every
  // `rehash_every` samples (0: never).
  std::uint32_t rebuild_every = 200;
  double rebuild_growth = 1.1;
  std::uint64_t rehash_every = 0;
  SampledCorrection sampled_correction = SampledCorrection::kLogQ;  // docs/training.md
  double max_seconds = 0;        // seconds of training, evaluations excluded (0: none)
  std::uint32_t eval_every = 0;  // batches between quick P@1 checks (0: each epoch)
  std::uint32_t eval_points = 1000;
  friend bool operator==(const TrainConfig&, const TrainConfig&) = default;
};

struct Config {
  NetworkConfig net;
  TrainConfig train;
  friend bool operator==(const Config&, const Config&) = default;
};

// JSON round trip. Unknown keys, wrong types, unknown names and values out of range are errors
// naming the key and the file (`where`).
std::string to_json(const Config& c, int indent = 2);
Config config_from_json(const std::string& json, const std::string& where);
// Applies the keys present in `json` over `c`.
void merge_json(Config& c, const std::string& json, const std::string& where);
// Throws glide::Error naming the first invalid field.
void validate(const NetworkConfig& c);
void validate(const TrainConfig& c);

// `train` with each of output_lr, output_eps, lr and wide_lr left at 0 set to the value measured
// for a network of wide mode `wide`: beside a wide layer started at the centroids (on, auto), the
// wide layer already ranks the training points and the network only corrects it (0.002, 0.1,
// 3e-4; wide lr 0.05); alone or with the rare labels' path (off, tail), the network carries the
// model (0.035, 1e-7, 0.01; the path's wide lr 0.5). docs/training.md, "The network's defaults".
TrainConfig with_network_defaults(TrainConfig train, WideMode wide);

// The command-line flags of the config fields that have one (network, network.lsh and train;
// the per-layer settings of hidden_sampling have none), in the order of the field table.
struct ConfigFlag {
  // kText: a name, or a comma list of sizes.
  enum class Type { kU32, kU64, kReal, kText };
  std::string name;  // without the dashes: "lsh-family"
  std::string key;   // the JSON key path it sets: "network.lsh.family"
  std::string help;
  Type type = Type::kText;
};
const std::vector<ConfigFlag>& config_flags();
using FlagValue = std::variant<std::uint32_t, std::uint64_t, double, std::string>;
// Sets the field behind flag `name` (a ConfigFlag::name) from a value of the flag's type; errors
// (an unknown name, a value out of range) name the flag.
void set_config_flag(Config& c, std::string_view name, const FlagValue& value);

// The names of enum values in JSON and flags ("dwta", "bf16-act", ...).
const char* name(OutputSampling s);
const char* name(LshNegatives n);
const char* name(LossKind l);
const char* name(Optimizer o);
const char* name(TrainPrecision p);
const char* name(LrSchedule s);
const char* name(SampledCorrection c);
const char* name(hashing::HashKind k);
const char* name(hashing::InsertPolicy p);
const char* name(hashing::SampleStrategy s);
// The value named `text`; otherwise an error naming `what` (a key or a flag) and listing the
// accepted names. Defined for every enum that `name` takes.
template <class E>
E parse_enum(std::string_view text, const std::string& what);
OutputSampling parse_sampling(const std::string& s);
LossKind parse_loss(const std::string& s);
// NetworkConfig::wide_norm_power by name ("auto", "0", ..., "1") and back.
double parse_wide_norm_power(std::string_view text, const std::string& what);
const char* wide_norm_power_name(double power);  // null when not one of the named values
// NetworkConfig::wide_share_rounds by name ("auto", "0", "1", "2") and back.
double parse_wide_share_rounds(std::string_view text, const std::string& what);
const char* wide_share_rounds_name(double rounds);  // null when not one of the named values
// NetworkConfig::wide_contrast by name ("auto", "0", "1") and back.
double parse_wide_contrast(std::string_view text, const std::string& what);
const char* wide_contrast_name(double contrast);  // null when not one of the named values

}  // namespace glide::engine
