#include "apps/model_setup.h"

namespace glide::cli {

std::unique_ptr<engine::OutputSampler> make_train_sampler(const engine::Config& c,
                                                          const engine::Network& net) {
  switch (c.net.sampling) {
    case engine::OutputSampling::kDense:
      return nullptr;
    case engine::OutputSampling::kRandom:
      return engine::make_random_sampler(net.num_labels(),
                                         engine::sampling_budget(net.num_labels(), c.net.sparsity),
                                         c.train.seed);
    default:
      if (net.output_precision() != engine::Precision::kF32) {  // a bf16 model (--resume)
        const engine::ParamMatrix rows = engine::output_as_f32(net);
        return engine::make_lsh_sampler(c.net, c.train, rows, /*training=*/true);
      }
      return engine::make_lsh_sampler(c.net, c.train, net.output, /*training=*/true);
  }
}

std::unique_ptr<engine::OutputSampler> make_inference_sampler(const engine::Config& c,
                                                              const engine::Network& net) {
  return engine::make_inference_lsh_sampler(c, net);
}

}  // namespace glide::cli
