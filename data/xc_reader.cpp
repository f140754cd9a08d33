#include "data/xc_reader.h"

#include <algorithm>

#include "common/error.h"
#include "data/line_cursor.h"
#include "data/sparse_text.h"

namespace glide::data {

XcHeader parse_xc_header(std::string_view line, const std::string& name) {
  LineCursor cur(strip_cr(line));
  XcHeader h{};
  try {
    cur.skip_spaces();
    h.points = cur.parse_id("the point count (POINTS of the header 'POINTS FEATURES LABELS')",
                            std::uint64_t{1} << 32, "32-bit counts");
    if (cur.skip_spaces() == 0) cur.fail_here("a space and the feature count");
    h.features = cur.parse_id("the feature count (FEATURES of the header 'POINTS FEATURES LABELS')",
                              std::uint64_t{1} << 32, "32-bit counts");
    if (cur.skip_spaces() == 0) cur.fail_here("a space and the label count");
    h.labels = cur.parse_id("the label count (LABELS of the header 'POINTS FEATURES LABELS')",
                            std::uint64_t{1} << 32, "32-bit counts");
    cur.skip_spaces();
    if (!cur.at_end()) cur.fail_here("the end of the header line after 3 numbers");
  } catch (const LineError& e) {
    fail(position_message(name, 1, e.column, e.message));
  }
  return h;
}

bool looks_like_xc_header(std::string_view first_line) {
  // A libsvm line starts with labels ("3" or "3,7") and then "feature:value" pairs; a line with
  // no ':' that starts with a bare number and has more fields is an XC header, good or bad (the
  // XC reader then names what is wrong with it).
  const std::string_view line = strip_cr(first_line);
  if (line.find(':') != std::string_view::npos) return false;
  const std::size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos) return false;
  const std::size_t end = std::min(line.find_first_of(" \t", start), line.size());
  const std::string_view first = line.substr(start, end - start);
  if (first.find_first_not_of("0123456789") != std::string_view::npos) return false;
  return line.find_first_not_of(" \t", end) != std::string_view::npos;
}

Dataset read_xc_text(TextSource& source, const ReadOptions& options, ReadReport* report) {
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  const std::string& name = source.name();
  // The header: read until the first line ends.
  std::string pending;
  std::size_t nl;
  while ((nl = pending.find('\n')) == std::string::npos) {
    if (!source.read_more(pending, 1 << 16)) break;
  }
  if (pending.empty())
    fail(position_message(name, 1, 1,
                          "expected a header 'POINTS FEATURES LABELS', got an empty file"));
  const std::string_view first = std::string_view(pending).substr(0, nl);
  const XcHeader header = parse_xc_header(first, name);
  pending.erase(0, nl == std::string::npos ? pending.size() : nl + 1);

  SparseLineSyntax syntax;
  syntax.feature_limit = header.features;
  syntax.label_limit = header.labels;
  syntax.feature_limit_note = "the header's feature count";
  syntax.label_limit_note = "the header's label count";
  Dataset data = parse_sparse_lines(source, std::move(pending), 2, syntax, options, rep);
  if (rep.lines != header.points) {
    // Too few: point at the header; too many: at the first line beyond the declared points.
    if (rep.lines < header.points)
      fail(position_message(name, 1, 1,
                            "expected " + std::to_string(header.points) +
                                " points as the header declares, got " + std::to_string(rep.lines) +
                                " lines of points"));
    fail(position_message(name, header.points + 2, 1,
                          "expected the end of the file after the header's " +
                              std::to_string(header.points) + " points, got more lines"));
  }
  data.num_features = header.features;
  data.num_labels = header.labels;
  warn_skipped_lines(name, rep, options.quiet);
  warn_repeated_labels(name, rep, options.quiet);
  return data;
}

Dataset read_xc_text(const std::string& path, const ReadOptions& options, ReadReport* report) {
  auto source = open_text_source(path);
  return read_xc_text(*source, options, report);
}

Dataset parse_xc_text(std::string_view text, const std::string& name, const ReadOptions& options,
                      ReadReport* report) {
  auto source = memory_text_source(text, name);
  return read_xc_text(*source, options, report);
}

}  // namespace glide::data
