// The configuration's field table: every field of LshConfig, HiddenSampling, NetworkConfig,
// TrainConfig and Config once, with its JSON key, the values it accepts, its command-line flag
// and help. The JSON reader and writer, the unknown-key check, validate() and the CLI flags all
// walk these lists (engine/config.cpp), so a new field is its member in config.h (whose
// initializer is its default) plus one line here.
#pragma once
#include <concepts>
#include <limits>
#include <span>
#include <type_traits>

#include "engine/config.h"

namespace glide::engine::config_fields {

// The values a number (or each size of a list) may take; unbounded when left default.
struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;
};
constexpr Range in(double lo, double hi) {  // [lo, hi]
  return {.min = lo, .max = hi};
}
constexpr Range in(hashing::Bounds b) {  // a range the hash families share
  return in(b.min, b.max);
}
constexpr Range above(double lo) {  // > lo
  return {.min = lo, .min_open = true};
}
constexpr Range at_least(double lo) {  // >= lo
  return {.min = lo};
}

struct FieldInfo {
  const char* key;  // in the JSON object of its struct
  Range range = {};
  const char* flag = nullptr;  // command-line flag without the dashes; none when null
  const char* help = "";       // the flag's help
  bool written = true;         // false: left out of the JSON (the settings of a dense layer)
  bool checked = true;         // false: not range-checked (a setting the hash family ignores)
};

// A name of an enum value in JSON and flags.
template <class E>
struct Named {
  E value;
  const char* name;
};
inline constexpr Named<LossKind> kLossNames[] = {{LossKind::kSoftmax, "softmax"},
                                                 {LossKind::kSigmoid, "sigmoid"}};
inline constexpr Named<OutputSampling> kSamplingNames[] = {{OutputSampling::kLsh, "lsh"},
                                                           {OutputSampling::kRandom, "random"},
                                                           {OutputSampling::kDense, "dense"}};
inline constexpr Named<LshNegatives> kLshNegativesNames[] = {{LshNegatives::kSample, "sample"},
                                                             {LshNegatives::kBatch, "batch"}};
inline constexpr Named<Optimizer> kOptimizerNames[] = {
    {Optimizer::kAdam, "adam"}, {Optimizer::kSgd, "sgd"}, {Optimizer::kAdagrad, "adagrad"}};
inline constexpr Named<TrainPrecision> kTrainPrecisionNames[] = {
    {TrainPrecision::kF32, "fp32"},
    {TrainPrecision::kBF16Act, "bf16-act"},
    {TrainPrecision::kBF16, "bf16"},
    {TrainPrecision::kBF16W, "bf16-w"}};
inline constexpr Named<LrSchedule> kLrScheduleNames[] = {{LrSchedule::kConstant, "constant"},
                                                         {LrSchedule::kLinear, "linear"}};
inline constexpr Named<SampledCorrection> kSampledCorrectionNames[] = {
    {SampledCorrection::kNone, "none"}, {SampledCorrection::kLogQ, "logq"}};
// HiddenSampling::sampled.
inline constexpr Named<bool> kLayerModeNames[] = {{false, "dense"}, {true, "lsh"}};
inline constexpr Named<double> kWideNormPowerNames[] = {
    {kWideNormPowerAuto, "auto"}, {0, "0"}, {0.25, "0.25"}, {0.5, "0.5"}, {0.75, "0.75"}, {1, "1"}};
inline constexpr Named<double> kWideShareRoundsNames[] = {
    {kWideShareRoundsAuto, "auto"}, {0, "0"}, {1, "1"}, {2, "2"}};
inline constexpr Named<double> kWideContrastNames[] = {
    {kWideContrastAuto, "auto"}, {0, "0"}, {1, "1"}};
inline constexpr Named<WideMode> kWideModeNames[] = {{WideMode::kOff, "off"},
                                                     {WideMode::kOn, "on"},
                                                     {WideMode::kAuto, "auto"},
                                                     {WideMode::kTail, "tail"}};
// The hashing enums keep their names in hashing/ (hash_kind_name, ...).
std::span<const Named<hashing::HashKind>> hash_kind_names();
std::span<const Named<hashing::InsertPolicy>> insert_policy_names();
std::span<const Named<hashing::SampleStrategy>> sample_strategy_names();

// C is S or const S: the walks that write or check a config see it const.
template <class C, class S>
concept Is = std::same_as<std::remove_const_t<C>, S>;

// Each visit_fields calls, for every field of the struct in order, one of
//   v.number(member, info)         std::uint32_t, std::uint64_t or double
//   v.sizes(member, info)          std::vector<std::uint32_t>; info.range bounds each size
//   v.choice(member, names, info)  an enum (or bool) written as one of `names`
//   v.section(member, info)        a nested struct, a JSON object
//   v.list(member, info)           a std::vector of structs, a JSON array of objects

template <Is<LshConfig> C, class V>
void visit_fields(C& l, V& v) {
  v.choice(l.family, hash_kind_names(),
           {.key = "family", .flag = "lsh-family", .help = "simhash, wta, dwta or doph"});
  v.number(l.K, {.key = "K", .range = in(1, 32), .flag = "K", .help = "hash values per table"});
  v.number(l.L, {.key = "L", .range = in(1, 4096), .flag = "L", .help = "hash tables"});
  v.number(l.range_pow, {.key = "range_pow",
                         .range = in(hashing::kRangePowBounds),
                         .flag = "range-pow",
                         .help = "log2 of buckets per table"});
  v.number(l.bucket_size, {.key = "bucket_size",
                           .range = in(1, 4096),
                           .flag = "bucket-size",
                           .help = "neuron ids kept per bucket"});
  v.choice(l.insert_policy, insert_policy_names(), {.key = "insert_policy"});
  v.number(l.simhash_ratio, {.key = "simhash_ratio",
                             .range = in(hashing::kSparseRatioBounds),
                             .checked = hashing::uses_sparse_ratio(l.family)});
  v.number(l.bin_size, {.key = "bin_size",
                        .range = in(hashing::kBinSizeBounds),
                        .checked = hashing::uses_bin_size(l.family)});
  v.choice(l.strategy, sample_strategy_names(),
           {.key = "strategy", .flag = "lsh-strategy", .help = "union, topk or threshold"});
  v.number(l.min_count, {.key = "min_count"});
}

// A dense layer is written as its mode alone (it uses no other setting); reading accepts them all.
template <Is<HiddenSampling> C, class V>
void visit_fields(C& h, V& v) {
  v.choice(h.sampled, kLayerModeNames, {.key = "mode"});
  v.number(h.sparsity, {.key = "sparsity",
                        .range = {.min = 0, .max = 1, .min_open = true},
                        .written = h.sampled,
                        .checked = h.sampled});
  v.section(h.lsh, {.key = "lsh", .written = h.sampled, .checked = h.sampled});
}

template <Is<NetworkConfig> C, class V>
void visit_fields(C& n, V& v) {
  v.number(n.num_features, {.key = "num_features", .range = above(0)});
  v.number(n.num_labels, {.key = "num_labels", .range = above(0)});
  v.sizes(n.hidden, {.key = "hidden",
                     .range = in(1, 65536),
                     .flag = "hidden",
                     .help = "hidden layer sizes, e.g. 128 or 1024,512,128"});
  v.list(n.hidden_sampling, {.key = "hidden_sampling"});
  v.choice(n.sampling, kSamplingNames,
           {.key = "sampling",
            .flag = "sampling",
            .help = "output neurons computed in training: lsh, random or dense"});
  v.choice(n.lsh_negatives, kLshNegativesNames,
           {.key = "lsh_negatives",
            .flag = "lsh-negatives",
            .help = "lsh sampling: sample (each sample's own table candidates) or batch (the "
                    "candidates most of the batch retrieved, shared by all)"});
  v.number(n.lsh_query_every,
           {.key = "lsh_query_every",
            .range = in(1, 65536),
            .flag = "lsh-query-every",
            .help = "lsh-negatives batch: every k-th sample of the batch queries the tables"});
  v.number(n.sparsity, {.key = "sparsity",
                        .range = {.min = 0, .max = 1, .min_open = true},
                        .flag = "sparsity",
                        .help = "fraction of output neurons active per sample"});
  v.number(
      n.prior_fraction,
      {.key = "prior_fraction",
       .range = in(0, 1),
       .flag = "prior-fraction",
       .help = "sampled inference: share of the labels scored that are the largest-bias ones"});
  v.choice(n.loss, kLossNames, {.key = "loss", .flag = "loss", .help = "softmax or sigmoid"});
  v.choice(n.wide, kWideModeNames,
           {.key = "wide",
            .flag = "wide",
            .help = "on: a sparse input -> label layer beside the hidden layers, started at the "
                    "labels' centroids; off: the network alone, at its own lrs, often better "
                    "where labels are facets or behaviour (tags, recommendations); tail: the "
                    "network alone plus a wide layer started at zero over the rare labels "
                    "(--wide-tail-points); auto: a new model trains the network alone for up to 2 "
                    "epochs first and keeps the wide layer (on) unless the network alone scores "
                    "higher (P@1 + P@5) on held-out training points, and then trains tail "
                    "(docs/training.md)"});
  v.number(n.wide_tail_points,
           {.key = "wide_tail_points",
            .range = above(0),
            .flag = "wide-tail-points",
            .help = "wide tail: labels with at most this many training points get wide weights",
            .checked = n.wide == WideMode::kTail || n.wide == WideMode::kAuto});
  v.number(n.wide_max_per_label,
           {.key = "wide_max_per_label",
            .range = above(0),
            .flag = "wide-max-per-label",
            .help = "the wide layer's weights per label (its centroid's largest)",
            .checked = has_wide(n)});
  v.number(n.wide_min_weight,
           {.key = "wide_min_weight",
            .range = in(0, 1),
            .flag = "wide-min-weight",
            .help = "a label's wide weights below this fraction of its largest are dropped",
            .checked = has_wide(n)});
  v.number(n.wide_init, {.key = "wide_init",
                         .range = {.min = 0, .max = 1e4},
                         .flag = "wide-init",
                         .help = "the norm of each label's wide weights at the start (the "
                                 "centroid start; wide tail starts at zero)",
                         .checked = wide_leads(n.wide)});
  v.choice(n.wide_norm_power, kWideNormPowerNames,
           {.key = "wide_norm_power",
            .flag = "wide-norm-power",
            .help = "a label's starting wide weights are its points' summed inputs over their norm "
                    "to this power: 1 (each label normalised), 0 (frequent labels score higher), "
                    "0.25, 0.5, 0.75, or auto (the best on held-out training points)"});
  v.choice(n.wide_share_rounds, kWideShareRoundsNames,
           {.key = "wide_share_rounds",
            .flag = "wide-share-rounds",
            .help = "rounds of splitting each training point's inputs among its labels, by how "
                    "well each label's centroid explains them, before the centroids are summed: "
                    "0, 1, 2, or auto (chosen with the norm power on held-out training points)"});
  v.choice(n.wide_contrast, kWideContrastNames,
           {.key = "wide_contrast",
            .flag = "wide-contrast",
            .help = "1: each label's starting wide weights give up the mean centroid of its 10 "
                    "nearest labels on its features, keeping what tells it from them; 0: not; "
                    "auto: chosen with the norm power on held-out training points"});
  v.section(n.lsh, {.key = "lsh"});
  v.number(n.seed,
           {.key = "seed", .flag = "model-seed", .help = "seed of weights and hash functions"});
}

template <Is<TrainConfig> C, class V>
void visit_fields(C& t, V& v) {
  const Range unit_open_top{.min = 0, .max = 1, .max_open = true};  // [0, 1)
  v.choice(t.optimizer, kOptimizerNames,
           {.key = "optimizer",
            .flag = "optimizer",
            .help = "hidden and input layers: adam, sgd or adagrad"});
  v.choice(t.output_optimizer, kOptimizerNames,
           {.key = "output_optimizer",
            .flag = "output-optimizer",
            .help = "output layer: adagrad, adam or sgd"});
  v.number(t.output_lr, {.key = "output_lr",
                         .range = {.min = 0, .max = 10, .max_open = true},
                         .flag = "output-lr",
                         .help = "the output layer's learning rate (follows the lr schedule; 0: "
                                 "0.002 beside the wide layer, 0.035 without it)"});
  v.number(t.output_eps,
           {.key = "output_eps",
            .range = {.min = 0, .max = 10},
            .flag = "output-eps",
            .help = "the output layer's optimizer epsilon: smaller gradients take smaller steps "
                    "(0: 0.1 beside the wide layer, 1e-7 without it)"});
  v.number(t.wide_lr, {.key = "wide_lr",
                       .range = {.min = 0, .max = 10, .max_open = true},
                       .flag = "wide-lr",
                       .help = "the wide layer's learning rate (follows the lr schedule; 0: 0.05 "
                               "for the centroid start, 0.5 for wide tail)"});
  v.choice(t.precision, kTrainPrecisionNames,
           {.key = "precision",
            .flag = "precision",
            .help = "output layer: fp32, bf16-act (bf16 activations), bf16 (bf16 weights and Adam "
                    "state) or bf16-w (bf16 weights, fp32 Adam state)"});
  v.number(t.lr, {.key = "lr",
                  .range = {.min = 0, .max = 10, .max_open = true},
                  .flag = "lr",
                  .help = "learning rate of the hidden and input layers (0: 3e-4 beside the wide "
                          "layer, 0.01 without it)"});
  v.number(t.beta1, {.key = "beta1", .range = unit_open_top});
  v.number(t.beta2, {.key = "beta2", .range = unit_open_top});
  v.number(t.eps, {.key = "eps", .range = above(0)});
  v.number(t.batch,
           {.key = "batch", .range = in(1, 65536), .flag = "batch", .help = "mini-batch size"});
  v.number(
      t.epochs,
      {.key = "epochs", .range = above(0), .flag = "epochs", .help = "epochs (may be fractional)"});
  v.number(t.threads,
           {.key = "threads", .flag = "threads", .help = "worker threads (0: all cores)"});
  v.number(t.seed, {.key = "seed", .flag = "seed", .help = "seed of the visiting order"});
  v.number(t.rebuild_every, {.key = "rebuild_every",
                             .range = above(0),
                             .flag = "rebuild-every",
                             .help = "batches before the first table refresh"});
  v.number(t.rebuild_growth, {.key = "rebuild_growth",
                              .range = at_least(1),
                              .flag = "rebuild-growth",
                              .help = "factor by which the refresh interval grows"});
  v.number(t.rehash_every, {.key = "rehash_every",
                            .flag = "rehash-every",
                            .help = "samples between new hash functions (0: never)"});
  v.choice(t.lr_schedule, kLrScheduleNames,
           {.key = "lr_schedule",
            .flag = "lr-schedule",
            .help = "constant or linear (to lr-final x lr at the last epoch)"});
  v.number(t.lr_final, {.key = "lr_final",
                        .range = in(0, 1),
                        .flag = "lr-final",
                        .help = "final lr as a fraction of lr (linear schedule)"});
  v.number(t.lr_decay, {.key = "lr_decay",
                        .range = {.min = 0, .max = 1, .min_open = true},
                        .flag = "lr-decay",
                        .help = "the lr is also multiplied by this per epoch trained (1: off)"});
  v.choice(t.sampled_correction, kSampledCorrectionNames,
           {.key = "sampled_correction",
            .flag = "sampled-correction",
            .help = "none or logq: correct sampled negatives' logits by -log q"});
  v.number(
      t.max_seconds,
      {.key = "max_seconds",
       .flag = "max-seconds",
       .help =
           "stop after this many seconds of training (evaluations and the setup before the first "
           "batch excluded); the lr schedule then "
           "ends where the time or --epochs runs out, whichever comes first"});
  v.number(t.eval_every, {.key = "eval_every",
                          .flag = "eval-every",
                          .help = "batches between evaluations of the test and validation "
                                  "points (0: each epoch)"});
  v.number(t.eval_points, {.key = "eval_points",
                           .flag = "eval-points",
                           .help = "test points per evaluation during training"});
}

template <Is<Config> C, class V>
void visit_fields(C& c, V& v) {
  v.section(c.net, {.key = "network"});
  v.section(c.train, {.key = "train"});
}

}  // namespace glide::engine::config_fields
