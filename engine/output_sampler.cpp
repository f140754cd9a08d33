#include "engine/output_sampler.h"

#include "engine/network.h"

#include <algorithm>
#include <cmath>

namespace glide::engine {

void batch_labels(std::span<const std::span<const std::uint32_t>> labels,
                  std::vector<std::uint32_t>& stamp, std::uint32_t& epoch,
                  std::vector<std::uint32_t>& out) {
  if (++epoch == 0) {
    std::fill(stamp.begin(), stamp.end(), 0);
    epoch = 1;
  }
  out.clear();
  for (const auto& ys : labels)
    for (std::uint32_t y : ys)
      if (stamp[y] != epoch) {
        stamp[y] = epoch;
        out.push_back(y);
      }
}

std::uint32_t sampling_budget(std::uint32_t n, double sparsity) {
  return std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::lround(n * sparsity)));
}

std::unique_ptr<OutputSampler> make_training_sampler(const Config& c, const Network& net,
                                                     bool rows_trained) {
  const std::uint32_t n = net.num_labels();
  switch (c.net.sampling) {
    case OutputSampling::kDense:
      return nullptr;
    case OutputSampling::kRandom:
      return make_random_sampler(n, sampling_budget(n, c.net.sparsity), c.train.seed,
                                 c.train.sampled_correction == SampledCorrection::kLogQ);
    default:
      return make_lsh_sampler(c.net, c.train, net.output->rows_f32(), /*training=*/true,
                              rows_trained ? FirstTables::kBuildNow : FirstTables::kAtFirstRefresh);
  }
}

}  // namespace glide::engine
