#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

namespace glide {

namespace {
std::string format_seconds(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600,
                  (static_cast<int>(s) / 60) % 60);
  }
  return buf;
}
}  // namespace

Progress::Progress(std::string label, std::uint64_t total, std::string unit, bool quiet)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      quiet_(quiet),
      tty_(::isatty(::fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(std::uint64_t done, const std::string& extra) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  // A terminal gets a live line; a log gets a line every 10 s at most.
  if (since < (tty_ ? 0.2 : 10.0)) return;
  last_print_ = now;
  print(done, extra, false);
}

void Progress::finish(std::uint64_t done, const std::string& extra) {
  if (quiet_) return;
  print(done, extra, true);
}

void Progress::print(std::uint64_t done, const std::string& extra, bool final_line) {
  const double t = elapsed_seconds();
  const double rate = t > 0 ? done / t : 0.0;
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, "%s: %llu", label_.c_str(),
                        static_cast<unsigned long long>(done));
  if (total_) {
    n += std::snprintf(buf + n, sizeof buf - n, "/%llu (%.1f%%)",
                       static_cast<unsigned long long>(total_), 100.0 * done / total_);
  }
  n += std::snprintf(buf + n, sizeof buf - n, " %s, %.0f %s/s", unit_.c_str(), rate, unit_.c_str());
  if (total_ && !final_line && rate > 0 && done < total_) {
    std::snprintf(buf + n, sizeof buf - n, ", ETA %s",
                  format_seconds((total_ - done) / rate).c_str());
  } else if (final_line) {
    std::snprintf(buf + n, sizeof buf - n, ", %s", format_seconds(t).c_str());
  }
  std::string line = buf;
  if (!extra.empty()) line += ", " + extra;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  printed_ = true;
}

}  // namespace glide
