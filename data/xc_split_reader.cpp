#include "data/xc_split_reader.h"

#include "common/error.h"
#include "data/line_cursor.h"
#include "data/sparse_text.h"
#include "data/zstd_io.h"

namespace glide::data {

namespace {

struct SplitHeader {
  std::uint64_t points;
  std::uint32_t columns;
};

// "POINTS COLUMNS" (`what` names the second: "FEATURES" or "LABELS").
SplitHeader parse_header(std::string_view line, const std::string& name, const char* what) {
  LineCursor cur(strip_cr(line));
  SplitHeader h{};
  const std::string points =
                        std::string("the point count (POINTS of the header 'POINTS ") + what + "')",
                    columns = std::string(what) + " of the header 'POINTS " + what + "'";
  try {
    cur.skip_spaces();
    h.points = cur.parse_id(points.c_str(), std::uint64_t{1} << 32, "32-bit counts");
    if (cur.skip_spaces() == 0) cur.fail_here(std::string("a space and ") + what);
    h.columns = cur.parse_id(columns.c_str(), std::uint64_t{1} << 32, "32-bit counts");
    cur.skip_spaces();
    if (!cur.at_end()) cur.fail_here("the end of the header line after 2 numbers");
  } catch (const LineError& e) {
    fail(position_message(name, 1, e.column, e.message));
  }
  return h;
}

// One split file as points of "id:v" entries (held as features), checked against its header.
Dataset read_entries(TextSource& source, const char* what, const ReadOptions& options) {
  const std::string& name = source.name();
  std::string pending;
  std::size_t nl;
  while ((nl = pending.find('\n')) == std::string::npos)
    if (!source.read_more(pending, 1 << 16)) break;
  if (pending.empty())
    fail(position_message(
        name, 1, 1, std::string("expected a header 'POINTS ") + what + "', got an empty file"));
  const SplitHeader header = parse_header(std::string_view(pending).substr(0, nl), name, what);
  pending.erase(0, nl == std::string::npos ? pending.size() : nl + 1);
  SparseLineSyntax syntax;
  syntax.labels = false;
  syntax.feature_limit = header.columns;
  syntax.feature_limit_note =
      what[0] == 'F' ? "the header's feature count" : "the header's label count";
  ReadReport report;
  Dataset d = parse_sparse_lines(source, std::move(pending), 2, syntax, options, report);
  if (report.lines != header.points)
    fail(position_message(name, 1, 1,
                          "expected " + std::to_string(header.points) +
                              " points as the header declares, got " +
                              std::to_string(report.lines) + " lines"));
  d.num_features = header.columns;
  return d;
}

// The pair read from its two sources.
Dataset read_pair(TextSource& features, TextSource& labels, const ReadOptions& options) {
  if (options.skip_bad_lines)
    fail(features.name() + ", " + labels.name(),
         "skipping bad lines would pair points with other points' labels; fix the files instead");
  Dataset d = read_entries(features, "FEATURES", options);
  const Dataset y = read_entries(labels, "LABELS", options);
  if (y.num_points() != d.num_points())
    fail(labels.name(), "has " + std::to_string(y.num_points()) + " points but " + features.name() +
                            " has " + std::to_string(d.num_points()));
  d.label_offsets = y.row_offsets;
  d.label_ids = y.feature_ids;
  d.num_labels = y.num_features;
  return d;
}

}  // namespace

Dataset read_xc_split(const std::string& features_path, const std::string& labels_path,
                      const ReadOptions& options) {
  auto features = open_text_source(features_path);
  auto labels = open_text_source(labels_path);
  return read_pair(*features, *labels, options);
}

Dataset parse_xc_split(std::string_view features, const std::string& features_name,
                       std::string_view labels, const std::string& labels_name,
                       const ReadOptions& options) {
  auto f = memory_text_source(features, features_name);
  auto l = memory_text_source(labels, labels_name);
  return read_pair(*f, *l, options);
}

}  // namespace glide::data
