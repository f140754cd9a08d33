// `glide bench data`: text parsing throughput at 1 and 2 threads, .gds load time and its speed-up
// over parsing the same data as text, and synthetic generator throughput, all in one run.
#include <tbb/global_control.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include <cxxopts.hpp>

#include "apps/commands.h"
#include "common/error.h"
#include "common/timing.h"
#include "data/gds_format.h"
#include "data/synth_xc.h"
#include "data/xc_reader.h"
#include "data/xc_writer.h"

namespace glide::cli {

namespace {

using namespace glide::data;

// The best of `reps` timings of `f` (seconds): the least disturbed by other work on the machine.
double best_of(int reps, const std::function<void()>& f) {
  double best = 1e300;
  for (int i = 0; i < reps; ++i) {
    const auto t = Clock::now();
    f();
    best = std::min(best, seconds_since(t));
  }
  return best;
}

}  // namespace

int bench_data(int argc, char** argv) {
  cxxopts::Options o("glide bench data",
                     "Generates a dataset of the 'default' preset's shape, writes it as XC text "
                     "and .gds, then measures parsing, loading and generation.");
  o.add_options()("points", "points to generate",
                  cxxopts::value<std::uint64_t>()->default_value("50000"))(
      "reps", "repetitions per measurement (the best counts)",
      cxxopts::value<int>()->default_value("3"))(
      "dir", "directory for the temporary files",
      cxxopts::value<std::string>()->default_value(
          std::filesystem::temp_directory_path().string()))("keep", "keep the generated files")(
      "h,help", "describe the flags");
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s", o.help().c_str());
    return 0;
  }
  if (!r.unmatched().empty()) fail("unexpected argument '" + r.unmatched().front() + "'");
  const int reps = std::max(1, r["reps"].as<int>());
  XcSynthConfig config = xc_preset("default");
  config.points = r["points"].as<std::uint64_t>();
  const XcGenerator gen(config);
  const std::string base =
      r["dir"].as<std::string>() + "/glide-bench-data-" + std::to_string(::getpid());
  const std::string text_path = base + ".txt", gds_path = base + ".gds";

  Dataset data;
  const double gen_all = best_of(reps, [&] { data = gen.train(); });
  double gen_one;
  {
    tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
    gen_one = best_of(1, [&] { gen.train(1); });
  }
  write_xc_text(text_path, data);
  write_gds(gds_path, data);
  const double text_mb = std::filesystem::file_size(text_path) / 1e6;
  const double gds_mb = std::filesystem::file_size(gds_path) / 1e6;

  auto parse_time = [&](int threads) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    ReadOptions ro;
    ro.threads = threads;
    Dataset back;
    const double t = best_of(reps, [&] { back = read_xc_text(text_path, ro); });
    if (!(back == data)) fail("benchmark: the text read back differs");
    return t;
  };
  const double parse1 = parse_time(1), parse2 = parse_time(2);
  auto load_time = [&](int threads) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    Dataset back;
    const double t = best_of(reps, [&] { back = read_gds(gds_path, threads); });
    if (!(back == data)) fail("benchmark: the .gds read back differs");
    return t;
  };
  const double load1 = load_time(1), load2 = load_time(2);
  if (!r.count("keep")) {
    std::filesystem::remove(text_path);
    std::filesystem::remove(gds_path);
  }

  const double points = static_cast<double>(data.num_points());
  std::printf(
      "dataset: %.0f points, %u features, %u labels, %zu nonzeros; text %.1f MB, .gds %.1f MB\n\n",
      points, data.num_features, data.num_labels, data.num_nonzeros(), text_mb, gds_mb);
  std::printf("%-28s %10s %12s %12s\n", "measurement", "threads", "seconds", "rate");
  std::printf("%-28s %10d %12.4f %9.1f MB/s\n", "parse XC text", 1, parse1, text_mb / parse1);
  std::printf("%-28s %10d %12.4f %9.1f MB/s\n", "parse XC text", 2, parse2, text_mb / parse2);
  std::printf("%-28s %10d %12.4f %9.1f MB/s\n", "load .gds", 1, load1, gds_mb / load1);
  std::printf("%-28s %10d %12.4f %9.1f MB/s\n", "load .gds", 2, load2, gds_mb / load2);
  std::printf("%-28s %10d %12.4f %8.0f pts/s\n", "generate (synth_xc)", 1, gen_one,
              points / gen_one);
  std::printf("%-28s %10s %12.4f %8.0f pts/s\n", "generate (synth_xc)", "all", gen_all,
              points / gen_all);
  std::printf("\nratios\n");
  std::printf("  .gds load speed-up over text parse, 1 thread:   %6.1fx\n", parse1 / load1);
  std::printf("  .gds load speed-up over text parse, 2 threads:  %6.1fx\n", parse2 / load2);
  std::printf("  text parse scaling 2 threads / 1 thread:       %6.2fx\n", parse1 / parse2);
  std::printf("  generator scaling all threads / 1 thread:      %6.2fx\n", gen_one / gen_all);
  return 0;
}

}  // namespace glide::cli
