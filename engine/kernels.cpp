#include "engine/kernels.h"

#include <cmath>

namespace glide::engine {

AdamStep AdamStep::at(float lr, float beta1, float beta2, float eps, std::uint64_t t) {
  const double b1t = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
  const double b2t = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
  return {static_cast<float>(lr * std::sqrt(b2t) / b1t), beta1, beta2, eps, lr};
}

const KernelDispatch<Kernels>& fp32_kernel_dispatch() {
  static const KernelDispatch<Kernels> dispatch{
      {Isa::kScalar, [] { return &scalar_kernels(); }},
      {Isa::kAvx2, [] { return &avx2_kernels(); }},
      {Isa::kAvx512, [] { return &avx512_kernels(); }},
  };
  return dispatch;
}

const Kernels& kernels_for(Isa isa) {
  return fp32_kernel_dispatch().at(isa);
}

const Kernels& kernels() {
  return fp32_kernel_dispatch().active();
}

}  // namespace glide::engine
