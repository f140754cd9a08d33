// `glide predict`: one line of top-k labels and scores per input line, from files or stdin.
#include <tbb/global_control.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include <cxxopts.hpp>

#include "apps/bench_util.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "common/error.h"
#include "data/dataset_io.h"
#include "data/gds_format.h"
#include "data/libsvm_reader.h"
#include "data/xc_reader.h"
#include "data/zstd_io.h"
#include "engine/predictor.h"

namespace glide::cli {

namespace {

// A line with no input: blank (spaces only) or a comment ('#' first). It still gets its (empty)
// output line, so that output line N always answers input line N.
bool is_blank_or_comment(const std::string& line) {
  const std::size_t first = line.find_first_not_of(" \t");
  return first == std::string::npos || line[first] == '#';
}

// Parses one input line: XC/libsvm "labels f:v f:v ..." or bare "f:v f:v ..."; labels are
// ignored. Errors name the source, the line and the column.
void parse_line(const std::string& line, const std::string& source, std::uint64_t number,
                std::uint32_t num_features, data::Dataset& into) {
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
    one = data::parse_libsvm(bare ? " " + line : line, source, ro);
  } catch (const Error& e) {
    // The parser saw a one-line text: put the real line number (and column) back.
    std::string msg = e.what();
    const std::string prefix = source + ":1:";
    if (msg.rfind(prefix, 0) == 0) {
      std::size_t colon = msg.find(':', prefix.size());
      std::string col = msg.substr(prefix.size(), colon - prefix.size());
      if (bare && !col.empty() && std::isdigit(static_cast<unsigned char>(col[0])))
        col = std::to_string(std::stoul(col) - 1);
      msg = source + ":" + std::to_string(number) + ":" + col + msg.substr(colon);
    }
    throw Error(msg);
  }
  if (one.num_points() != 1)
    fail(source + ":" + std::to_string(number), "expected one input per line");
  const data::SparseView x = one.features(0);
  into.add_point(x.ids, x.values, {});
}

// An XC file's first line, "POINTS FEATURES LABELS", is no input: it is skipped without an output
// line, so output line N answers the file's point N. A header that declares more features than
// the model has means data of another feature space, as `glide eval` says too.
void check_xc_header(const std::string& line, const std::string& source,
                     std::uint32_t num_features) {
  const data::XcHeader header = data::parse_xc_header(line, source);
  if (header.features > num_features)
    fail(source + ":1", "the XC header declares " + std::to_string(header.features) +
                            " features, the model has " + std::to_string(num_features));
}

// Whether the file at `path` begins with the .gds magic (false when it cannot be read: opening it
// as text then names the fault).
bool starts_as_gds(const std::string& path) {
  std::uint8_t head[16] = {};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  const std::size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  return data::starts_with_gds_magic({head, n});
}

// The lines of a text file, zstd-compressed or not, read a block at a time.
class LineReader {
 public:
  explicit LineReader(std::unique_ptr<data::TextSource> source) : source_(std::move(source)) {}
  bool next(std::string& line) {
    std::size_t nl;
    while ((nl = buffer_.find('\n', start_)) == std::string::npos) {
      buffer_.erase(0, start_);
      start_ = 0;
      if (!source_->read_more(buffer_, 1 << 16)) {
        if (buffer_.empty()) return false;
        line = std::move(buffer_);
        buffer_.clear();
        return true;
      }
    }
    line.assign(buffer_, start_, nl - start_);
    start_ = nl + 1;
    return true;
  }

 private:
  std::unique_ptr<data::TextSource> source_;
  std::string buffer_;
  std::size_t start_ = 0;
};

}  // namespace

int cmd_predict(int argc, char** argv) {
  cxxopts::Options o(
      "glide predict",
      "Top-k labels for each input line of the FILEs (stdin without FILEs, or for '-'; text, .zst "
      "text or .gds): "
      "\"f:v f:v ...\", or XC/libsvm lines whose labels are ignored. Prints \"label:score ...\" "
      "per input line; a blank or comment ('#') line gets an empty line. A file's XC header line "
      "(\"POINTS FEATURES LABELS\") is skipped and gets no line; a .gds file gets a line per "
      "point.");
  o.positional_help("[FILE...]");
  o.add_options()("model", "model file (.glide)", cxxopts::value<std::string>())(
      "k", "labels per input", cxxopts::value<std::uint32_t>()->default_value("5"))(
      "mode",
      "exact (every label scored) or sampled (only the candidates of the model's output index, "
      "or of LSH tables without one)",
      cxxopts::value<std::string>()->default_value("exact"))("probes", probes_help(""),
                                                             cxxopts::value<std::string>())(
      "batch", "inputs predicted together", cxxopts::value<std::uint32_t>()->default_value("256"))(
      "threads", "worker threads (0: all cores)", cxxopts::value<unsigned>()->default_value("0"))(
      "inputs", "input files ('-': stdin)", cxxopts::value<std::vector<std::string>>())(
      "h,help", "this help");
  o.parse_positional({"inputs"});
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  if (!r.count("model")) fail("--model FILE is required");
  std::vector<std::string> sources{"-"};
  if (r.count("inputs")) sources = r["inputs"].as<std::vector<std::string>>();
  // Open every file before the model loads, so a misspelled name fails at once. A .gds file is
  // read whole; text files (plain or zstd) a block at a time.
  std::vector<std::unique_ptr<LineReader>> files(sources.size());
  std::vector<bool> is_gds(sources.size(), false);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (sources[i] == "-") continue;
    is_gds[i] = starts_as_gds(sources[i]);
    if (!is_gds[i]) files[i] = std::make_unique<LineReader>(data::open_text_source(sources[i]));
  }
  const engine::EvalMode mode = engine::parse_eval_mode(r["mode"].as<std::string>());
  engine::SearchParams search;
  if (r.count("probes")) search.probes = parse_probes_flag(r["probes"].as<std::string>());
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
  data::Dataset pending;
  // One entry per input line since the last flush: whether it holds an input (the next point of
  // `pending`) or is blank/comment (an empty output line).
  std::vector<bool> line_has_input;
  std::vector<data::SparseView> inputs;
  std::vector<engine::Prediction> out;
  auto flush = [&] {
    inputs.clear();
    for (std::size_t i = 0; i < pending.num_points(); ++i) inputs.push_back(pending.features(i));
    out.clear();
    if (!inputs.empty()) predictor.predict(inputs, k, out, search);
    std::string text;
    char buf[48];
    std::size_t next = 0;
    for (const bool has_input : line_has_input) {
      if (has_input) {
        const engine::Prediction& p = out[next++];
        for (std::size_t i = 0; i < p.labels.size(); ++i) {
          std::snprintf(buf, sizeof buf, "%s%u:%.6g", i ? " " : "", p.labels[i], p.scores[i]);
          text += buf;
        }
      }
      text += '\n';
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    pending = data::Dataset{};
    line_has_input.clear();
  };
  for (std::size_t s = 0; s < sources.size(); ++s) {
    const std::string name = sources[s] == "-" ? "stdin" : sources[s];
    if (is_gds[s]) {  // one output line per point
      data::ReadOptions ro;
      ro.quiet = true;
      const data::Dataset points = data::read_dataset(sources[s], ro);
      if (points.num_features > num_features)
        fail(name, "has " + std::to_string(points.num_features) + " features, the model has " +
                       std::to_string(num_features));
      for (std::size_t i = 0; i < points.num_points(); ++i) {
        const data::SparseView x = points.features(i);
        pending.add_point(x.ids, x.values, {});
        line_has_input.push_back(true);
        if (line_has_input.size() >= batch) flush();
      }
      continue;
    }
    std::string line;
    std::uint64_t number = 0;
    const auto next_line = [&] {
      return sources[s] == "-" ? static_cast<bool>(std::getline(std::cin, line))
                               : files[s]->next(line);
    };
    while (next_line()) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (number == 1 && data::looks_like_xc_header(line)) {
        check_xc_header(line, name, num_features);
        continue;
      }
      const bool has_input = !is_blank_or_comment(line);
      if (has_input) parse_line(line, name, number, num_features, pending);
      line_has_input.push_back(has_input);
      if (line_has_input.size() >= batch) flush();
    }
    if (sources[s] == "-" && std::cin.bad()) fail(name, "read error");
  }
  if (!line_has_input.empty()) flush();
  return 0;
}

}  // namespace glide::cli
