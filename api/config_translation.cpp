#include "api/config_translation.h"

namespace glide::detail {

namespace {

// The public LSH options over an engine LshConfig (its other fields keep their values); `path`
// ("network.lsh.") names the options in errors. Names become enums through the engine's config
// table, so the API accepts exactly the names a config file does.
void copy_lsh(const LshOptions& o, engine::LshConfig& l, const std::string& path) {
  l.family = engine::parse_enum<hashing::HashKind>(o.family, path + "family");
  l.K = o.K;
  l.L = o.L;
  l.range_pow = o.range_pow;
  l.bucket_size = o.bucket_size;
}

}  // namespace

engine::EvalMode to_engine(PredictMode m) {
  return m == PredictMode::kSampled ? engine::EvalMode::kSampled : engine::EvalMode::kExact;
}

engine::NetworkConfig to_engine(const ModelConfig& c) {
  engine::NetworkConfig n;
  n.num_features = c.num_features;
  n.num_labels = c.num_labels;
  n.hidden = c.hidden;
  n.loss = c.loss == Loss::kSigmoid ? engine::LossKind::kSigmoid : engine::LossKind::kSoftmax;
  n.sampling = c.sampling == Sampling::kDense    ? engine::OutputSampling::kDense
               : c.sampling == Sampling::kRandom ? engine::OutputSampling::kRandom
                                                 : engine::OutputSampling::kLsh;
  n.sparsity = c.sparsity;
  copy_lsh(c.lsh, n.lsh, "network.lsh.");
  n.wide = c.wide == Wide::kOff    ? engine::WideMode::kOff
           : c.wide == Wide::kOn   ? engine::WideMode::kOn
           : c.wide == Wide::kTail ? engine::WideMode::kTail
                                   : engine::WideMode::kAuto;
  n.wide_tail_points = c.wide_tail_points;
  n.wide_max_per_label = c.wide_max_per_label;
  n.wide_min_weight = c.wide_min_weight;
  n.wide_init = c.wide_init;
  n.wide_norm_power = engine::parse_wide_norm_power(c.wide_norm_power, "network.wide_norm_power");
  n.wide_share_rounds =
      engine::parse_wide_share_rounds(c.wide_share_rounds, "network.wide_share_rounds");
  n.wide_contrast = engine::parse_wide_contrast(c.wide_contrast, "network.wide_contrast");
  for (const HiddenLayerSampling& h : c.hidden_sampling) {
    engine::HiddenSampling e;
    e.sampled = h.sampled;
    e.sparsity = h.sparsity;
    copy_lsh(h.lsh, e.lsh,
             "network.hidden_sampling[" + std::to_string(n.hidden_sampling.size()) + "].lsh.");
    n.hidden_sampling.push_back(e);
  }
  n.seed = c.seed;
  return n;
}

ModelConfig from_engine(const engine::NetworkConfig& n) {
  ModelConfig c;
  c.num_features = n.num_features;
  c.num_labels = n.num_labels;
  c.hidden = n.hidden;
  c.loss = n.loss == engine::LossKind::kSigmoid ? Loss::kSigmoid : Loss::kSoftmax;
  c.sampling = n.sampling == engine::OutputSampling::kDense    ? Sampling::kDense
               : n.sampling == engine::OutputSampling::kRandom ? Sampling::kRandom
                                                               : Sampling::kLsh;
  c.sparsity = n.sparsity;
  c.lsh.family = engine::name(n.lsh.family);
  c.lsh.K = n.lsh.K;
  c.lsh.L = n.lsh.L;
  c.lsh.range_pow = n.lsh.range_pow;
  c.lsh.bucket_size = n.lsh.bucket_size;
  c.wide = n.wide == engine::WideMode::kOff    ? Wide::kOff
           : n.wide == engine::WideMode::kOn   ? Wide::kOn
           : n.wide == engine::WideMode::kTail ? Wide::kTail
                                               : Wide::kAuto;
  c.wide_tail_points = n.wide_tail_points;
  c.wide_max_per_label = n.wide_max_per_label;
  c.wide_min_weight = n.wide_min_weight;
  c.wide_init = n.wide_init;
  const char* power = engine::wide_norm_power_name(n.wide_norm_power);
  c.wide_norm_power = power ? power : std::to_string(n.wide_norm_power);
  const char* rounds = engine::wide_share_rounds_name(n.wide_share_rounds);
  c.wide_share_rounds = rounds ? rounds : std::to_string(n.wide_share_rounds);
  const char* contrast = engine::wide_contrast_name(n.wide_contrast);
  c.wide_contrast = contrast ? contrast : std::to_string(n.wide_contrast);
  for (const engine::HiddenSampling& e : n.hidden_sampling) {
    HiddenLayerSampling h;
    h.sampled = e.sampled;
    h.sparsity = e.sparsity;
    h.lsh = {engine::name(e.lsh.family), e.lsh.K, e.lsh.L, e.lsh.range_pow, e.lsh.bucket_size};
    c.hidden_sampling.push_back(h);
  }
  c.seed = n.seed;
  return c;
}

// Fields of TrainOptions over `t` (the engine's other knobs keep their values).
void apply(const TrainOptions& o, engine::TrainConfig& t) {
  t.optimizer = engine::parse_enum<engine::Optimizer>(o.optimizer, "train.optimizer");
  t.lr = o.lr;
  t.output_optimizer =
      engine::parse_enum<engine::Optimizer>(o.output_optimizer, "train.output_optimizer");
  t.output_lr = o.output_lr;
  t.output_eps = o.output_eps;
  t.wide_lr = o.wide_lr;
  t.batch = o.batch;
  t.epochs = o.epochs;
  t.threads = o.threads;
  t.seed = o.seed;
  t.max_seconds = o.max_seconds;
  t.eval_every = o.eval_every;
  t.eval_points = o.eval_points;
  t.rebuild_every = o.rebuild_every;
  t.rebuild_growth = o.rebuild_growth;
  t.lr_schedule = engine::parse_enum<engine::LrSchedule>(o.lr_schedule, "train.lr_schedule");
  t.lr_final = o.lr_final;
  t.lr_decay = o.lr_decay;
}

TrainOptions from_engine(const engine::TrainConfig& t) {
  TrainOptions o;
  o.optimizer = engine::name(t.optimizer);
  o.lr = t.lr;
  o.output_optimizer = engine::name(t.output_optimizer);
  o.output_lr = t.output_lr;
  o.output_eps = t.output_eps;
  o.wide_lr = t.wide_lr;
  o.batch = t.batch;
  o.epochs = t.epochs;
  o.threads = t.threads;
  o.seed = t.seed;
  o.max_seconds = t.max_seconds;
  o.eval_every = t.eval_every;
  o.eval_points = t.eval_points;
  o.rebuild_every = t.rebuild_every;
  o.rebuild_growth = t.rebuild_growth;
  o.lr_schedule = engine::name(t.lr_schedule);
  o.lr_final = t.lr_final;
  o.lr_decay = t.lr_decay;
  return o;
}

void validate_all(const engine::Config& c) {
  engine::validate(c.net);
  engine::validate(c.train);
}

Metrics to_metrics(const engine::EvalResult& e) {
  Metrics m;
  for (int k = 0; k < 5; ++k) {
    m.precision[k] = e.precision[k];
    m.ndcg[k] = e.ndcg[k];
  }
  m.points = e.points;
  m.seconds = e.seconds;
  m.has_psp = e.has_psp;
  for (int k = 0; k < 5; ++k) m.psp[k] = e.psp[k];
  return m;
}

}  // namespace glide::detail
