// Extreme Classification Repository text format (Amazon-670K, WikiLSHTC-325K, Delicious-200K):
//   POINTS FEATURES LABELS
//   l1,l2,... f:v f:v ...      (0-based ids; a point without labels starts with a space)
#pragma once
#include <string>
#include <string_view>

#include "data/dataset.h"
#include "data/read_options.h"
#include "data/zstd_io.h"

namespace glide::data {

// Reads an XC text file, zstd-compressed or not. Ids beyond the header's dimensions, bad tokens,
// non-finite values and a point count that disagrees with the header are glide::Error
// "FILE:LINE:COL: expected ..., got '...'".
Dataset read_xc_text(const std::string& path, const ReadOptions& options = {},
                     ReadReport* report = nullptr);
// The same for text in memory (or zstd data in memory); `name` stands for the file in messages.
Dataset parse_xc_text(std::string_view text, const std::string& name,
                      const ReadOptions& options = {}, ReadReport* report = nullptr);
Dataset read_xc_text(TextSource& source, const ReadOptions& options, ReadReport* report);

// An XC header line, "POINTS FEATURES LABELS"; anything else is glide::Error "NAME:1:COL:
// expected ..., got '...'".
struct XcHeader {
  std::uint64_t points;
  std::uint32_t features, labels;
};
XcHeader parse_xc_header(std::string_view line, const std::string& name);

// True when `first_line` is meant as an XC header (well formed or not): no ':' anywhere, a bare
// number first and more fields after it. A libsvm line always has ':' or a single field.
bool looks_like_xc_header(std::string_view first_line);

}  // namespace glide::data
