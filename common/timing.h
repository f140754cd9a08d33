// The one clock of glide's timings: training phases, server metrics, benchmarks, reports.
#pragma once
#include <chrono>

namespace glide {

using Clock = std::chrono::steady_clock;

// Seconds from `start` to now.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace glide
