#include "data/libsvm_reader.h"

#include "common/error.h"
#include "data/line_cursor.h"
#include "data/sparse_text.h"

namespace glide::data {

Dataset read_libsvm(TextSource& source, const ReadOptions& options, ReadReport* report) {
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  if (options.index_base < 0 || options.index_base > 1)
    fail(source.name(), "index base must be 0 or 1, got " + std::to_string(options.index_base));
  SparseLineSyntax syntax;
  syntax.libsvm = true;
  syntax.index_base = options.index_base;
  if (options.num_features) {
    syntax.feature_limit = options.num_features;
    syntax.feature_limit_note = "the given feature count";
  }
  if (options.num_labels) {
    syntax.label_limit = options.num_labels;
    syntax.label_limit_note = "the given label count";
  }
  Dataset data = parse_sparse_lines(source, {}, 1, syntax, options, rep);
  if (data.num_points() == 0 && rep.skipped_lines == 0)
    fail(position_message(
        source.name(), rep.lines + 1, 1,
        "expected a line 'LABELS FEATURE:VALUE ...', got " +
            std::string(rep.lines ? "only blank or comment lines" : "an empty file")));
  if (options.num_features) data.num_features = options.num_features;
  if (options.num_labels) data.num_labels = options.num_labels;
  warn_skipped_lines(source.name(), rep, options.quiet);
  warn_repeated_labels(source.name(), rep, options.quiet);
  return data;
}

Dataset read_libsvm(const std::string& path, const ReadOptions& options, ReadReport* report) {
  auto source = open_text_source(path);
  return read_libsvm(*source, options, report);
}

Dataset parse_libsvm(std::string_view text, const std::string& name, const ReadOptions& options,
                     ReadReport* report) {
  auto source = memory_text_source(text, name);
  return read_libsvm(*source, options, report);
}

}  // namespace glide::data
