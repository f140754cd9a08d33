// The public API's settings and metrics (include/glide/glide.h) to and from the engine's: every
// name becomes an enum through the engine's config table, so the library accepts exactly the
// names a config file does, and errors name the config key.
#pragma once
#include "engine/config.h"
#include "engine/evaluator.h"
#include "glide/glide.h"

namespace glide::detail {

engine::EvalMode to_engine(PredictMode m);
engine::NetworkConfig to_engine(const ModelConfig& c);
ModelConfig from_engine(const engine::NetworkConfig& n);
// Sets `t`'s fields that TrainOptions has (the others keep their values).
void apply(const TrainOptions& o, engine::TrainConfig& t);
TrainOptions from_engine(const engine::TrainConfig& t);
// Checks the network and training settings, naming the first invalid field.
void validate_all(const engine::Config& c);
Metrics to_metrics(const engine::EvalResult& e);

}  // namespace glide::detail
