#include "engine/kernels.h"

#include <cmath>

namespace glide::engine {

AdamStep AdamStep::at(float lr, float beta1, float beta2, float eps, std::uint64_t t) {
  const double b1t = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
  const double b2t = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
  return {static_cast<float>(lr * std::sqrt(b2t) / b1t), beta1, beta2, eps, lr};
}

const Kernels& kernels_for(Isa isa) {
  if (!isa_supported(isa)) return scalar_kernels();
  switch (isa) {
    case Isa::kAvx512:
      return avx512_kernels();
    case Isa::kAvx2:
      return avx2_kernels();
    default:
      return scalar_kernels();
  }
}

const Kernels& kernels() {
  return kernels_for(active_isa());
}

}  // namespace glide::engine
