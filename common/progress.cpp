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

Progress::Progress(std::string label, std::uint64_t total, std::string unit, bool quiet,
                   std::uint64_t already_done)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      already_done_(already_done),
      quiet_(quiet),
      tty_(::isatty(::fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::restart() {
  start_ = last_print_ = std::chrono::steady_clock::now();
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

std::string progress_line(const std::string& label, const std::string& unit, std::uint64_t total,
                          std::uint64_t already_done, std::uint64_t done, double seconds,
                          bool final_line) {
  const std::uint64_t this_run = done > already_done ? done - already_done : 0;
  const double rate = seconds > 0 ? this_run / seconds : 0.0;
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, "%s: %llu", label.c_str(),
                        static_cast<unsigned long long>(done));
  if (total) {
    n += std::snprintf(buf + n, sizeof buf - n, "/%llu (%.1f%%)",
                       static_cast<unsigned long long>(total), 100.0 * done / total);
  }
  n += std::snprintf(buf + n, sizeof buf - n, " %s, %.0f %s/s", unit.c_str(), rate, unit.c_str());
  if (total && !final_line && rate > 0 && done < total) {
    std::snprintf(buf + n, sizeof buf - n, ", ETA %s",
                  format_seconds((total - done) / rate).c_str());
  } else if (final_line) {
    std::snprintf(buf + n, sizeof buf - n, ", %s", format_seconds(seconds).c_str());
  }
  return buf;
}

void Progress::print(std::uint64_t done, const std::string& extra, bool final_line) {
  std::string line =
      progress_line(label_, unit_, total_, already_done_, done, elapsed_seconds(), final_line);
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
