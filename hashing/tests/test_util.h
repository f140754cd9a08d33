// Helpers shared by the hashing tests.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/cpu.h"
#include "common/rng.h"

namespace glide::hashing::test {

// Restores the active ISA when a test that switches it ends.
struct IsaGuard {
  Isa saved = active_isa();
  ~IsaGuard() { set_active_isa(saved); }
};

inline std::vector<float> random_unit(Rng& rng, std::uint32_t dim) {
  std::vector<float> v(dim);
  double norm = 0;
  for (auto& x : v) x = static_cast<float>(rng.normal()), norm += double{x} * x;
  for (auto& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

// A unit vector at angle `angle` (radians) from unit vector x.
inline std::vector<float> at_angle(Rng& rng, const std::vector<float>& x, double angle) {
  std::vector<float> n = random_unit(rng, static_cast<std::uint32_t>(x.size()));
  double dot = 0;
  for (std::size_t i = 0; i < x.size(); ++i) dot += double{n[i]} * x[i];
  double norm = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    n[i] = static_cast<float>(n[i] - dot * x[i]), norm += double{n[i]} * n[i];
  std::vector<float> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    y[i] = static_cast<float>(std::cos(angle) * x[i] + std::sin(angle) * n[i] / std::sqrt(norm));
  return y;
}

}  // namespace glide::hashing::test
