#include "server/process_stats.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace glide::server {

namespace {

// Seconds since the epoch at which the machine booted (/proc/stat "btime").
double boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats out;
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (!std::getline(stat, line)) return out;
  // Fields after the command name, which is in parentheses and may hold spaces: the third
  // field overall (state) is the first here; utime, stime are fields 14 and 15, starttime 22.
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return out;
  std::istringstream fields(line.substr(paren + 1));
  std::string field;
  double utime = 0, stime = 0, start = 0;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
    if (i == 22) start = std::stod(field);
  }
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  if (!(statm >> pages >> resident) || ticks <= 0) return out;
  out.resident_bytes = resident * static_cast<double>(::sysconf(_SC_PAGESIZE));
  out.cpu_seconds = (utime + stime) / ticks;
  out.start_time_seconds = boot_time() + start / ticks;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++out.open_fds;
  out.available = true;
  return out;
}

}  // namespace glide::server
