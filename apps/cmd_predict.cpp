// `glide predict`: one line of top-k labels and scores per input line on stdin.
#include <tbb/global_control.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include <cxxopts.hpp>

#include "apps/commands.h"
#include "apps/config_flags.h"
#include "common/error.h"
#include "data/libsvm_reader.h"
#include "engine/predictor.h"

namespace glide::cli {

namespace {

// Parses one input line: XC/libsvm "labels f:v f:v ..." or bare "f:v f:v ..."; labels are
// ignored. Errors name stdin, the line and the column.
void parse_line(const std::string& line, std::uint64_t number, std::uint32_t num_features,
                data::Dataset& into) {
  const std::size_t first = line.find_first_not_of(" \t");
  const std::size_t space = line.find_first_of(" \t", first);
  const bool bare =
      first != std::string::npos &&
      line.substr(first, space == std::string::npos ? std::string::npos : space - first)
              .find(':') != std::string::npos;
  data::ReadOptions ro;
  ro.num_features = num_features;
  ro.threads = 1;
  ro.quiet = true;
  data::Dataset one;
  try {
    one = data::parse_libsvm(bare ? " " + line : line, "stdin", ro);
  } catch (const Error& e) {
    // The parser saw a one-line text: put the real line number (and column) back.
    std::string msg = e.what();
    const std::string prefix = "stdin:1:";
    if (msg.rfind(prefix, 0) == 0) {
      std::size_t colon = msg.find(':', prefix.size());
      std::string col = msg.substr(prefix.size(), colon - prefix.size());
      if (bare && !col.empty() && std::isdigit(static_cast<unsigned char>(col[0])))
        col = std::to_string(std::stoul(col) - 1);
      msg = "stdin:" + std::to_string(number) + ":" + col + msg.substr(colon);
    }
    throw Error(msg);
  }
  if (one.num_points() != 1) fail("stdin:" + std::to_string(number), "expected one input per line");
  const data::SparseView x = one.features(0);
  into.add_point(x.ids, x.values, {});
}

}  // namespace

int cmd_predict(int argc, char** argv) {
  cxxopts::Options o(
      "glide predict",
      "Top-k labels for each input line on stdin (\"f:v f:v ...\", or XC/libsvm lines whose labels "
      "are ignored); prints \"label:score ...\" per line.");
  o.add_options()("model", "model file (.glide)", cxxopts::value<std::string>())(
      "k", "labels per input", cxxopts::value<std::uint32_t>()->default_value("5"))(
      "mode", "exact or sampled (LSH active set only)",
      cxxopts::value<std::string>()->default_value("exact"))(
      "batch", "inputs predicted together", cxxopts::value<std::uint32_t>()->default_value("256"))(
      "threads", "worker threads (0: all cores)", cxxopts::value<unsigned>()->default_value("0"))(
      "h,help", "this help");
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  if (!r.count("model")) fail("--model FILE is required");
  const engine::EvalMode mode = engine::parse_eval_mode(r["mode"].as<std::string>());
  const std::uint32_t k = r["k"].as<std::uint32_t>(),
                      batch = std::max(1u, r["batch"].as<std::uint32_t>());
  const unsigned threads = r["threads"].as<unsigned>() ? r["threads"].as<unsigned>()
                                                       : std::thread::hardware_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
  const engine::InferenceModel model(r["model"].as<std::string>(),
                                     std::vector<engine::EvalMode>{mode});
  const engine::Predictor& predictor = model.predictor(mode);
  const std::uint32_t num_features = model.config().net.num_features;

  std::ios::sync_with_stdio(false);
  std::string line;
  std::uint64_t number = 0;
  data::Dataset pending;
  std::vector<data::SparseView> inputs;
  std::vector<engine::Prediction> out;
  auto flush = [&] {
    inputs.clear();
    for (std::size_t i = 0; i < pending.num_points(); ++i) inputs.push_back(pending.features(i));
    predictor.predict(inputs, k, out);
    std::string text;
    char buf[48];
    for (const auto& p : out) {
      for (std::size_t i = 0; i < p.labels.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s%u:%.6g", i ? " " : "", p.labels[i], p.scores[i]);
        text += buf;
      }
      text += '\n';
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    pending = data::Dataset{};
  };
  while (std::getline(std::cin, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    parse_line(line, number, num_features, pending);
    if (pending.num_points() >= batch) flush();
  }
  if (pending.num_points()) flush();
  return 0;
}

}  // namespace glide::cli
