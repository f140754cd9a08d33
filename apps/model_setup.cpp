#include "apps/model_setup.h"

namespace glide::cli {

std::unique_ptr<engine::OutputSampler> make_train_sampler(const engine::Config& c,
                                                          const engine::Network& net,
                                                          bool rows_trained) {
  return engine::make_training_sampler(c, net, rows_trained);
}

std::unique_ptr<engine::OutputSampler> make_inference_sampler(const engine::Config& c,
                                                              const engine::Network& net) {
  return engine::make_inference_lsh_sampler(c, net);
}

}  // namespace glide::cli
