// The one clock of the command line's timings (benchmarks and `glide data` reports).
#pragma once
#include <chrono>

namespace glide::cli {

using Clock = std::chrono::steady_clock;

// Seconds from `start` to now.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace glide::cli
