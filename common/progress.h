// A progress line for long work: rewritten in place on a terminal, plain lines every few seconds
// otherwise (logs), silent when quiet.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace glide {

// The text of a progress line: "LABEL: DONE/TOTAL (P%) UNIT, R UNIT/s, ETA T" while running,
// "..., T" (the time taken) on the final line. The rate and the ETA are over the work done in
// `seconds`: done - already_done (a resumed run starts with already_done units behind it).
std::string progress_line(const std::string& label, const std::string& unit, std::uint64_t total,
                          std::uint64_t already_done, std::uint64_t done, double seconds,
                          bool final_line);

class Progress {
 public:
  // `total` units of work named `unit` (e.g. "samples"); 0 when unknown. `already_done` of them
  // were done before this run (a resumed run): they count towards the percentage, not the rate.
  Progress(std::string label, std::uint64_t total, std::string unit, bool quiet = false,
           std::uint64_t already_done = 0);
  // Reports that `done` units are complete; `extra` is appended (e.g. "loss 1.23").
  void update(std::uint64_t done, const std::string& extra = "");
  // Ends the line with the final state: `done` units (fewer than the total when work stopped
  // early, e.g. on Ctrl-C).
  void finish(std::uint64_t done, const std::string& extra = "");
  double elapsed_seconds() const;
  // Starts the clock again (the rate and the time taken count from here): work before the
  // units counted, such as setting a model up, is not in the rate.
  void restart();

 private:
  void print(std::uint64_t done, const std::string& extra, bool final_line);
  std::string label_, unit_;
  std::uint64_t total_, already_done_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
  bool printed_ = false;
};

}  // namespace glide
