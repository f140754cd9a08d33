// What the `glide bench` benchmarks share: the clock (apps/timing.h), one percentile definition
// (so every benchmark's p50/p99 compare), comma-list flags, and the model a benchmark measures:
// a saved model with its test set, or a quick model trained on synthetic data through fit().
#pragma once
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/timing.h"
#include "data/dataset.h"
#include "engine/config.h"
#include "engine/fit.h"
#include "engine/network.h"

namespace glide::cli {

// The q-quantile (0 <= q <= 1) of `sorted` (ascending) by linear interpolation between the two
// closest ranks: with n values x[0..n-1], position h = q (n - 1) gives
// x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]) (Hyndman and Fan's definition 7, the
// default of numpy.percentile and of R's quantile). 0 for no values.
double percentile_of_sorted(std::span<const double> sorted, double q);
// The same for values in any order.
double percentile(std::vector<double> values, double q);

// The items of --`flag`'s comma list. An empty list or an empty item is a glide::Error naming
// the flag and the list.
std::vector<std::string> split_list(const std::string& text, const std::string& flag);

// Each item of --`flag`'s comma list through `parse` (item -> value). An item that `parse`
// rejects (by throwing) becomes a glide::Error naming the flag, the item and why.
template <class Parse>
auto parse_list(const std::string& text, const std::string& flag, Parse&& parse) {
  std::vector<decltype(parse(std::string{}))> out;
  for (const std::string& item : split_list(text, flag)) {
    try {
      out.push_back(parse(item));
    } catch (const std::exception& e) {
      fail("--" + flag, "bad item '" + item + "' in '" + text + "': " + e.what());
    }
  }
  return out;
}

// A number in [min, max]; anything else (trailing characters included) throws glide::Error.
double parse_number(const std::string& item, double min, double max);
// An integer in [min, max]; likewise.
std::uint64_t parse_integer(const std::string& item, std::uint64_t min, std::uint64_t max);
// `item` when it is one of `choices`; otherwise throws glide::Error listing them.
std::string parse_choice(const std::string& item, const std::vector<std::string>& choices);
// A --probes value (sampled mode's search width, engine::SearchParams::probes): an integer from 1
// to server::kMaxProbes, the bound of a request's "probes"; otherwise a glide::Error naming
// --probes and the value.
std::uint32_t parse_probes_flag(const std::string& text);
// A --probes comma list, each item as parse_probes_flag takes it.
std::vector<std::uint32_t> parse_probes_list(const std::string& text);
// The help of a --probes flag: what probes are, `extra` (e.g. "a list prints a row each"), and
// the default.
std::string probes_help(const std::string& extra);

// The model a benchmark measures and the points it is measured on.
struct BenchModel {
  engine::Config config;
  std::unique_ptr<engine::Network> net;
  data::Dataset train;  // quick models only
  data::Dataset test;
};

// A saved model (weights only) and its test set from `test_path`, given by --`test_flag`
// (required). The test set must fit the model's features.
BenchModel load_bench_model(const std::string& model_path, const std::string& test_path,
                            const std::string& test_flag);

// A quick model on a synthetic preset: what it trains on and its shape.
struct QuickModelSpec {
  std::string preset = "default";
  std::uint64_t points = 0;  // training points (0: the preset's)
  std::uint32_t labels = 0;  // labels (0: the preset's)
  std::size_t test_points = 2000;
  std::vector<std::uint32_t> hidden{128};
  engine::OutputSampling sampling = engine::OutputSampling::kLsh;
  double epochs = 1;
};
// The quick model's data generated and its network initialised (callers that train something
// alongside, through FitOptions, hook it to the network before training).
BenchModel make_quick_model(const QuickModelSpec& spec);
// Trains it through engine::fit with its config's training sampler.
engine::FitProgress train_quick_model(BenchModel& model, const engine::FitOptions& options = {});

}  // namespace glide::cli
