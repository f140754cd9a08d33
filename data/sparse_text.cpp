#include "data/sparse_text.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include "common/error.h"
#include "data/line_cursor.h"
#include "data/threads.h"

namespace glide::data {

namespace {

struct ChunkIssue {
  std::uint64_t line;  // 0-based within the chunk
  LineError error;
};

struct ChunkResult {
  Dataset part;
  std::uint64_t lines = 0;
  std::uint64_t skipped = 0;
  std::optional<ChunkIssue> first_issue;
  std::uint64_t repeated_labels = 0;
  std::uint64_t first_repeat_line = 0;  // 0-based within the chunk; valid when repeated_labels
};

bool blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return LineCursor::is_space(c); });
}

// Parses one line into `part`; on error the point is rolled back and LineError thrown. Returns how
// many repeated label ids were dropped from the point.
std::size_t parse_line(std::string_view line, const SparseLineSyntax& syntax, Dataset& part) {
  const std::size_t features_before = part.feature_ids.size();
  const std::size_t labels_before = part.label_ids.size();
  LineCursor cur(line);
  try {
    // A line without labels starts with a space or tab (or is empty).
    if (syntax.labels && !cur.at_end() && !LineCursor::is_space(cur.peek())) {
      for (;;) {
        const std::uint32_t label = cur.parse_id("a label id (non-negative integer)",
                                                 syntax.label_limit, syntax.label_limit_note);
        part.label_ids.push_back(label);
        part.num_labels = std::max(part.num_labels, label + 1);
        if (cur.at_end() || LineCursor::is_space(cur.peek())) break;
        if (cur.peek() != ',')
          cur.fail_here(
              "',' or a space after a label id (a line without labels starts with a space)");
        cur.advance();
      }
    }
    const std::uint64_t raw_limit = syntax.feature_limit + syntax.index_base;
    for (;;) {
      cur.skip_spaces();
      if (cur.at_end()) break;
      if (syntax.libsvm) {
        if (cur.peek() == '#') break;
        if (line.substr(cur.pos(), 4) == "qid:") {
          while (!cur.at_end() && !LineCursor::is_space(cur.peek())) cur.advance();
          continue;
        }
      }
      const std::size_t start = cur.pos();
      std::uint32_t id =
          cur.parse_id("a feature id (non-negative integer)", raw_limit, syntax.feature_limit_note);
      if (syntax.index_base > 0) {
        if (id < static_cast<std::uint32_t>(syntax.index_base))
          cur.fail_at(start, "a feature id >= " + std::to_string(syntax.index_base) +
                                 " (ids in this file are " + std::to_string(syntax.index_base) +
                                 "-based)");
        id -= syntax.index_base;
      }
      cur.expect(':', "':' after a feature id");
      const float value = cur.parse_value("a finite feature value");
      part.feature_ids.push_back(id);
      part.values.push_back(value);
      part.num_features = std::max(part.num_features, id + 1);
    }
  } catch (const LineError&) {
    part.feature_ids.resize(features_before);
    part.values.resize(features_before);
    part.label_ids.resize(labels_before);
    throw;
  }
  const std::size_t listed = part.label_ids.size() - labels_before;
  const std::size_t kept = keep_first_occurrences({part.label_ids.data() + labels_before, listed});
  part.label_ids.resize(labels_before + kept);
  part.row_offsets.push_back(part.feature_ids.size());
  part.label_offsets.push_back(part.label_ids.size());
  return listed - kept;
}

ChunkResult parse_chunk(std::string_view text, const SparseLineSyntax& syntax, bool skip_bad) {
  ChunkResult r;
  // A rough reservation: about 10 bytes per feature in typical files.
  r.part.feature_ids.reserve(text.size() / 10);
  r.part.values.reserve(text.size() / 10);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = strip_cr(text.substr(pos, end - pos));
    pos = end + 1;
    const std::uint64_t index = r.lines++;
    if (syntax.libsvm && (blank(line) || line.front() == '#')) continue;
    try {
      const std::size_t repeated = parse_line(line, syntax, r.part);
      if (repeated && r.repeated_labels == 0) r.first_repeat_line = index;
      r.repeated_labels += repeated;
    } catch (LineError& e) {
      if (!r.first_issue) r.first_issue = ChunkIssue{index, std::move(e)};
      if (!skip_bad) break;
      ++r.skipped;
    }
  }
  return r;
}

// Cuts `text` into about `pieces` chunks, each ending just after a '\n' (or at the end).
std::vector<std::string_view> cut_at_lines(std::string_view text, std::size_t pieces) {
  std::vector<std::string_view> chunks;
  const std::size_t target =
      std::max<std::size_t>(text.size() / std::max<std::size_t>(pieces, 1), 1);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = std::min(text.size(), pos + target);
    if (end < text.size()) {
      const std::size_t nl = text.find('\n', end - 1);
      end = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    chunks.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return chunks;
}

}  // namespace

Dataset parse_sparse_lines(TextSource& source, std::string pending, std::uint64_t first_line,
                           const SparseLineSyntax& syntax, const ReadOptions& options,
                           ReadReport& report) {
  Dataset out;
  std::uint64_t line = first_line;
  const std::size_t block = std::max<std::size_t>(options.block_bytes, 1);
  bool eof = false;
  while (!eof || !pending.empty()) {
    if (!eof && pending.size() < block) eof = !source.read_more(pending, block - pending.size());
    // Parse whole lines only; the tail waits for the next block (or is the last line).
    std::size_t cut = pending.size();
    if (!eof) {
      const std::size_t nl = pending.rfind('\n');
      if (nl == std::string::npos) {
        // A line longer than the block: read on until it ends.
        eof = !source.read_more(pending, block);
        continue;
      }
      cut = nl + 1;
    }
    const std::string_view text(pending.data(), cut);
    // Several chunks per thread keep the threads busy when lines differ in length; chunks of at
    // least 256 KiB keep the per-chunk overhead small.
    const std::size_t pieces = std::clamp<std::size_t>(text.size() >> 18, 1, 512);
    const auto chunks = cut_at_lines(text, pieces);
    std::vector<ChunkResult> results(chunks.size());
    with_threads(options.threads, [&] {
      tbb::parallel_for(std::size_t{0}, chunks.size(), [&](std::size_t i) {
        results[i] = parse_chunk(chunks[i], syntax, options.skip_bad_lines);
      });
    });
    for (auto& r : results) {
      if (r.first_issue) {
        const std::string message =
            position_message(source.name(), line + r.first_issue->line, r.first_issue->error.column,
                             r.first_issue->error.message);
        if (!options.skip_bad_lines) fail(message);
        if (report.first_error.empty()) report.first_error = message;
        report.skipped_lines += r.skipped;
      }
      if (r.repeated_labels) {
        if (report.repeated_labels == 0)
          report.first_repeat = source.name() + ":" + std::to_string(line + r.first_repeat_line);
        report.repeated_labels += r.repeated_labels;
      }
      line += r.lines;
      report.lines += r.lines;
      out.append(r.part);
      r.part = Dataset();
    }
    pending.erase(0, cut);
  }
  return out;
}

void warn_skipped_lines(const std::string& name, const ReadReport& report, bool quiet) {
  if (quiet || report.skipped_lines == 0) return;
  std::fprintf(stderr, "%s: warning: skipped %llu malformed line(s); the first: %s\n", name.c_str(),
               static_cast<unsigned long long>(report.skipped_lines), report.first_error.c_str());
}

void warn_repeated_labels(const std::string& name, const ReadReport& report, bool quiet) {
  if (quiet || report.repeated_labels == 0) return;
  std::fprintf(stderr,
               "%s: warning: dropped %llu repeated label id(s) (a point keeps each label once); "
               "the first at %s\n",
               name.c_str(), static_cast<unsigned long long>(report.repeated_labels),
               report.first_repeat.c_str());
}

}  // namespace glide::data
