// The storage behind a test network's output matrix, for tests that check what a storage keeps
// or read fp32 weights in place (throws std::bad_cast when the network holds another storage).
#pragma once
#include "engine/network.h"
#include "engine/output_weights.h"

namespace glide::engine::testing {

inline ParamMatrix& f32_rows(Network& net) {
  return dynamic_cast<F32OutputMatrix&>(*net.output).params();
}
inline const ParamMatrix& f32_rows(const Network& net) {
  return dynamic_cast<const F32OutputMatrix&>(*net.output).params();
}
inline const Bf16Rows& bf16_rows(const Network& net) {
  return dynamic_cast<const Bf16OutputMatrix&>(*net.output).storage();
}
inline const QuantizedRows& int8_rows(const Network& net) {
  return dynamic_cast<const Int8OutputMatrix&>(*net.output).storage();
}

}  // namespace glide::engine::testing
