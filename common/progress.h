// A progress line for long work: rewritten in place on a terminal, plain lines every few seconds
// otherwise (logs), silent when quiet.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace glide {

class Progress {
 public:
  // `total` units of work named `unit` (e.g. "samples"); 0 when unknown.
  Progress(std::string label, std::uint64_t total, std::string unit, bool quiet = false);
  // Reports that `done` units are complete; `extra` is appended (e.g. "loss 1.23").
  void update(std::uint64_t done, const std::string& extra = "");
  // Ends the line with the final state: `done` units (fewer than the total when work stopped
  // early, e.g. on Ctrl-C).
  void finish(std::uint64_t done, const std::string& extra = "");
  double elapsed_seconds() const;

 private:
  void print(std::uint64_t done, const std::string& extra, bool final_line);
  std::string label_, unit_;
  std::uint64_t total_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
  bool printed_ = false;
};

}  // namespace glide
