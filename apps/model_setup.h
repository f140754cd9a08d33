// Builds what training and evaluation need from a config: the output sampler of each mode.
#pragma once
#include <memory>

#include "engine/config.h"
#include "engine/network.h"
#include "engine/output_sampler.h"

namespace glide::cli {

// The training sampler for config.net.sampling (null for dense); `rows_trained` as in
// engine::make_training_sampler.
std::unique_ptr<engine::OutputSampler> make_train_sampler(const engine::Config& config,
                                                          const engine::Network& net,
                                                          bool rows_trained);
// LSH tables for sampled inference (no random fill-up).
std::unique_ptr<engine::OutputSampler> make_inference_sampler(const engine::Config& config,
                                                              const engine::Network& net);

}  // namespace glide::cli
