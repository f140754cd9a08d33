// One optimizer step on n weights, the optimizer chosen at run time: TrainConfig::optimizer for
// the hidden and input layers, output_optimizer for the output layer's fp32 rows and biases.
#pragma once
#include <cstddef>

#include "engine/config.h"
#include "engine/kernels.h"

namespace glide::engine {

// m: Adam's first moments; v: Adam's second moments or Adagrad's sums of squared gradients
// (SGD reads neither).
inline void optimizer_step(const Kernels& k, Optimizer o, float* w, float* m, float* v,
                           const float* g, std::size_t n, const AdamStep& step) {
  switch (o) {
    case Optimizer::kSgd:
      return k.axpy(-step.lr, g, w, n);
    case Optimizer::kAdagrad:
      return k.adagrad(w, v, g, n, step);
    case Optimizer::kAdam:
      return k.adam(w, m, v, g, n, step);
  }
}

}  // namespace glide::engine
