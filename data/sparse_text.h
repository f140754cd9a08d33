// The line syntax shared by XC text and libsvm files, "l1,l2,... f:v f:v ...", parsed in blocks
// (bounded memory) and, within a block, in chunks cut at line ends that are parsed in parallel
// and joined in order, so the result and the reported error never depend on the thread count.
#pragma once
#include <cstdint>
#include <string>

#include "data/dataset.h"
#include "data/read_options.h"
#include "data/zstd_io.h"

namespace glide::data {

// The most features or labels a dataset can count (a uint32_t).
inline constexpr std::uint64_t kMaxIdCount = 0xFFFFFFFFu;

struct SparseLineSyntax {
  // Ids must be below these limits (after index_base is subtracted from feature ids). The
  // largest id + 1 is a count held in 32 bits, so an id is at most 2^32 - 2.
  std::uint64_t feature_limit = kMaxIdCount;
  std::uint64_t label_limit = kMaxIdCount;
  // Why the limits exist, for messages, e.g. "the header's feature count".
  const char* feature_limit_note = "counts are 32-bit";
  const char* label_limit_note = "counts are 32-bit";
  int index_base = 0;  // feature ids in the file start here
  // libsvm: blank lines and '#' comments are skipped, 'qid:N' tokens ignored. Without it (XC
  // text) every line is a point, an empty one included.
  bool libsvm = false;
  // False: no label list, every token is "id:value" (the XC repository's split files).
  bool labels = true;
};

// Parses the lines of `source`, starting with the already-read text `pending`; the first line is
// numbered `first_line` (1 + the lines a caller consumed, e.g. a header). Malformed lines throw
// glide::Error "FILE:LINE:COL: expected ..., got '...'" or, under options.skip_bad_lines, are
// dropped and counted in `report`. A label id a line repeats is kept once (its first place) and
// counted in `report`. The result's num_features/num_labels are the largest ids + 1
// seen; `report.lines` counts the lines read, points or not.
Dataset parse_sparse_lines(TextSource& source, std::string pending, std::uint64_t first_line,
                           const SparseLineSyntax& syntax, const ReadOptions& options,
                           ReadReport& report);

// Prints the "skipped N bad lines" warning for `report` unless quiet.
void warn_skipped_lines(const std::string& name, const ReadReport& report, bool quiet);
// Prints the "dropped N repeated label ids" warning for `report` unless quiet.
void warn_repeated_labels(const std::string& name, const ReadReport& report, bool quiet);

}  // namespace glide::data
