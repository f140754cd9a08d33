// The Extreme Classification Repository's split files (e.g. trn_X_Xf.txt + trn_X_Y.txt):
//   FEATURES file: "POINTS FEATURES", then one line per point of "f:v f:v ..." (0-based ids)
//   LABELS file:   "POINTS LABELS",   then one line per point of "l:v l:v ..." (values ignored)
// Line i of one file is the same point as line i of the other; an empty line has no entries.
#pragma once
#include <string>
#include <string_view>

#include "data/dataset.h"
#include "data/read_options.h"

namespace glide::data {

// Reads both files (zstd-compressed or not) into one dataset. Ids beyond a header's count, bad
// tokens, a label list in the features file, point counts that disagree with a header or with
// each other are glide::Error "FILE:LINE:COL: ...". Skipping bad lines is refused: it would pair
// a point's features with another point's labels.
Dataset read_xc_split(const std::string& features_path, const std::string& labels_path,
                      const ReadOptions& options = {});
// The same for two texts in memory (or zstd data); the names stand for the files in messages.
Dataset parse_xc_split(std::string_view features, const std::string& features_name,
                       std::string_view labels, const std::string& labels_name,
                       const ReadOptions& options = {});

}  // namespace glide::data
