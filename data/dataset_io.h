// One entry point to read and write datasets in any supported format.
#pragma once
#include <string>

#include "data/dataset.h"
#include "data/read_options.h"

namespace glide::data {

// Reads `path` in options.format, or, with Format::Auto, by content and name:
//   - the .gds magic                       -> .gds
//   - a first line meant as an XC header    -> XC text (after zstd decompression, if any): a
//     number, more fields, no ':' (a malformed header is then an XC header error)
//   - anything else                        -> libsvm
// A TextCorpus format reads with default corpus options (see text_corpus.h for control).
// A label id a point lists twice is kept once (in every format), counted in `report` and warned
// about in one line unless options.quiet.
Dataset read_dataset(const std::string& path, const ReadOptions& options = {},
                     ReadReport* report = nullptr);

// The format read_dataset would use for `path` (never Auto).
Format detect_format(const std::string& path);

struct WriteOptions {
  int threads = 0;        // 0: every core
  int level = 3;          // zstd level for .gds and .zst
  bool compress = false;  // zstd-compress text output (implied by a .zst name)
};

// Writes `data` by the name of `path`: ".gds" -> .gds; anything else -> XC text (zstd-compressed
// when the name ends in ".zst"). Atomic.
void write_dataset(const std::string& path, const Dataset& data, const WriteOptions& options = {});

}  // namespace glide::data
