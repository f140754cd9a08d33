// What the process costs, read from /proc at scrape time for /metrics (Prometheus' standard
// process_* series): resident memory, open file descriptors, CPU time and start time.
#pragma once
#include <cstdint>

namespace glide::server {

struct ProcessStats {
  bool available = false;  // false where /proc cannot be read (not Linux): no process_* series
  double resident_bytes = 0;
  double cpu_seconds = 0;         // user + system
  double start_time_seconds = 0;  // since the Unix epoch
  std::uint64_t open_fds = 0;
};

ProcessStats read_process_stats();

}  // namespace glide::server
