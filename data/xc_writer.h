// Writes datasets as XC repository text, the format read_xc_text reads. Values are printed in
// the shortest form that reads back to the same float, so text round trips are exact.
#pragma once
#include <string>

#include "data/dataset.h"

namespace glide::data {

struct TextWriteOptions {
  bool compress = false;  // zstd-compress the output (also implied by a ".zst" path)
  int level = 3;          // zstd level
  int threads = 0;        // formatting threads; 0: every core
};

// Writes `data` to `path` atomically (write_file_atomic).
void write_xc_text(const std::string& path, const Dataset& data,
                   const TextWriteOptions& options = {});
// The XC text of points [first, last) without the header, one line per point.
std::string format_xc_lines(const Dataset& data, std::size_t first, std::size_t last);

}  // namespace glide::data
