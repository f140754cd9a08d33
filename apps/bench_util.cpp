#include "apps/bench_util.h"

#include "engine/output_index.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "apps/model_setup.h"
#include "data/dataset_io.h"
#include "data/synth_xc.h"
#include "engine/checkpoint.h"
#include "engine/trainer.h"
#include "server/request_parser.h"

namespace glide::cli {

double percentile_of_sorted(std::span<const double> sorted, double q) {
  if (sorted.empty()) return 0;
  const double h = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const std::size_t below = static_cast<std::size_t>(h);
  if (below + 1 >= sorted.size()) return sorted.back();
  return sorted[below] + (h - static_cast<double>(below)) * (sorted[below + 1] - sorted[below]);
}

double percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  return percentile_of_sorted(values, q);
}

std::vector<std::string> split_list(const std::string& text, const std::string& flag) {
  if (text.empty()) fail("--" + flag, "needs a comma list, got an empty one");
  std::vector<std::string> items;
  for (std::size_t begin = 0;;) {
    const std::size_t comma = std::min(text.find(',', begin), text.size());
    if (comma == begin) fail("--" + flag, "empty item in '" + text + "'");
    items.push_back(text.substr(begin, comma - begin));
    if (comma == text.size()) return items;
    begin = comma + 1;
  }
}

double parse_number(const std::string& item, double min, double max) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(item.c_str(), &end);
  if (item.empty() || end != item.c_str() + item.size() || errno == ERANGE || !std::isfinite(v))
    fail("not a number");
  if (v < min || v > max) {
    char range[64];
    std::snprintf(range, sizeof range, "out of range [%g, %g]", min, max);
    fail(range);
  }
  return v;
}

std::uint64_t parse_integer(const std::string& item, std::uint64_t min, std::uint64_t max) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(item.c_str(), &end, 10);
  if (item.empty() || item[0] == '-' || item[0] == '+' || end != item.c_str() + item.size() ||
      errno == ERANGE)
    fail("not a whole number");
  if (v < min || v > max) fail("out of range " + std::to_string(min) + ".." + std::to_string(max));
  return v;
}

std::uint32_t parse_probes_flag(const std::string& text) {
  try {
    return static_cast<std::uint32_t>(parse_integer(text, 1, server::kMaxProbes));
  } catch (const Error& e) {
    fail("--probes", "bad value '" + text + "': " + e.what());
  }
}

std::vector<std::uint32_t> parse_probes_list(const std::string& text) {
  return parse_list(text, "probes", [](const std::string& item) {
    return static_cast<std::uint32_t>(parse_integer(item, 1, server::kMaxProbes));
  });
}

std::string probes_help(const std::string& extra) {
  return "sampled mode: clusters of the output index whose labels are scored (more: higher "
         "recall, slower)" +
         (extra.empty() ? std::string() : "; " + extra) +
         " (default: " + std::to_string(engine::OutputIndex::kDefaultProbes) + ")";
}

std::string parse_choice(const std::string& item, const std::vector<std::string>& choices) {
  if (std::find(choices.begin(), choices.end(), item) != choices.end()) return item;
  std::string list;
  for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
  fail("expected one of " + list);
}

BenchModel load_bench_model(const std::string& model_path, const std::string& test_path,
                            const std::string& test_flag) {
  if (test_path.empty()) fail("--model needs --" + test_flag + " DATA (the points to measure on)");
  engine::LoadedModel m = engine::load_model(model_path, /*optimizer_state=*/false);
  BenchModel b;
  b.config = m.config;
  b.net = std::move(m.net);
  b.test = data::read_dataset(test_path);
  if (b.test.num_features > b.config.net.num_features)
    fail(test_path, "has " + std::to_string(b.test.num_features) + " features, the model " +
                        model_path + " " + std::to_string(b.config.net.num_features));
  return b;
}

BenchModel make_quick_model(const QuickModelSpec& spec) {
  data::XcSynthConfig sc = data::xc_preset(spec.preset);
  if (spec.points) sc.points = spec.points;
  if (spec.labels) sc.labels = spec.labels;
  data::TrainTest tt = data::synth_xc_split(sc, spec.test_points);
  BenchModel b;
  b.config.net.num_features = tt.train.num_features;
  b.config.net.num_labels = tt.train.num_labels;
  b.config.net.hidden = spec.hidden;
  b.config.net.sampling = spec.sampling;
  b.config.train.epochs = spec.epochs;
  b.net = std::make_unique<engine::Network>(b.config.net);
  b.train = std::move(tt.train);
  b.test = std::move(tt.test);
  return b;
}

engine::FitProgress train_quick_model(BenchModel& model, const engine::FitOptions& options) {
  engine::Trainer trainer(*model.net, model.config.train,
                          make_train_sampler(model.config, *model.net, false));
  return engine::fit(*model.net, trainer, model.train, model.config.train, options);
}

}  // namespace glide::cli
