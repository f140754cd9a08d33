// Options and reports shared by every dataset reader.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace glide::data {

enum class Format {
  Auto,        // from the extension and the content (see read_dataset)
  Gds,         // glide's binary format (docs/formats.md)
  XcText,      // Extreme Classification Repository text: header line, then points
  Libsvm,      // svmlight/libsvm multi-label text, no header
  TextCorpus,  // plain text for word2vec-style samples (see text_corpus.h)
};

// "auto", "gds", "xc", "libsvm", "text"; throws glide::Error on anything else.
Format parse_format(const std::string& name);
const char* format_name(Format format);

struct ReadOptions {
  Format format = Format::Auto;
  // Drop malformed lines (counted, one warning line) instead of failing on the first one.
  bool skip_bad_lines = false;
  // Worker threads for parsing; 0 means every core.
  int threads = 0;
  // libsvm only: dimensions; 0 infers them as the largest id + 1. When given, larger ids are
  // errors. (XC text takes them from its header.)
  std::uint32_t num_features = 0;
  std::uint32_t num_labels = 0;
  // libsvm only: 1 when feature ids in the file start at 1 (they are stored 0-based).
  int index_base = 0;
  // No warning line on stderr for skipped lines (the report still counts them).
  bool quiet = false;
  // Text is parsed in blocks of about this many bytes so memory stays bounded for huge files;
  // tests make it small to exercise block boundaries.
  std::size_t block_bytes = std::size_t{64} << 20;
};

// What a reader saw besides the data.
struct ReadReport {
  std::uint64_t lines = 0;          // data lines read (header excluded)
  std::uint64_t skipped_lines = 0;  // malformed lines dropped under skip_bad_lines
  std::string first_error;          // the first skipped line's error, "FILE:LINE:COL: ..."
  // Label ids dropped because their point already listed them (each point keeps a label once),
  // and where the first was: "FILE:LINE" (text) or "FILE: point N" (.gds).
  std::uint64_t repeated_labels = 0;
  std::string first_repeat;
};

}  // namespace glide::data
