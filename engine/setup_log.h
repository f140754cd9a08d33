// What a long setup step (the wide layer's start, the check of the network alone) says as each
// of its stages ends, for the CLI to print: one finished line a stage, timings included.
#pragma once
#include <cstdio>
#include <functional>
#include <string>

#include "common/timing.h"

namespace glide::engine {

using SetupLog = std::function<void(const std::string& line)>;

// Seconds since `t0`, as a stage's line gives them ("3.7 s").
inline std::string seconds_text(Clock::time_point t0) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", seconds_since(t0));
  return buf;
}

}  // namespace glide::engine
