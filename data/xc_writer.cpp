#include "data/xc_writer.h"

#include <tbb/parallel_for.h>

#include <charconv>
#include <vector>

#include "common/file_util.h"
#include "data/threads.h"
#include "data/zstd_io.h"

namespace glide::data {

namespace {

void append_number(std::string& out, auto value) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

}  // namespace

std::string format_xc_lines(const Dataset& data, std::size_t first, std::size_t last) {
  std::string out;
  out.reserve((last - first) * 16 + (data.row_offsets[last] - data.row_offsets[first]) * 14);
  for (std::size_t i = first; i < last; ++i) {
    const auto labels = data.labels(i);
    for (std::size_t k = 0; k < labels.size(); ++k) {
      if (k) out += ',';
      append_number(out, labels[k]);
    }
    const SparseView f = data.features(i);
    for (std::size_t k = 0; k < f.size(); ++k) {
      out += ' ';
      append_number(out, f.ids[k]);
      out += ':';
      append_number(out, f.values[k]);
    }
    // A point without labels starts with the space before its first feature, as the format
    // wants; a point without labels or features is an empty line, which reads back as such.
    out += '\n';
  }
  return out;
}

void write_xc_text(const std::string& path, const Dataset& data, const TextWriteOptions& options) {
  const bool compress = options.compress || ends_with(path, ".zst");
  write_file_atomic(path, [&](std::FILE* file) {
    TextSink sink(file, compress, options.level);
    sink.write(std::to_string(data.num_points()) + " " + std::to_string(data.num_features) + " " +
               std::to_string(data.num_labels) + "\n");
    // Batches bound the memory for formatted text; within a batch, pieces format in parallel.
    constexpr std::size_t kPiece = 4096, kBatch = 64 * kPiece;
    std::vector<std::string> pieces;
    for (std::size_t batch = 0; batch < data.num_points(); batch += kBatch) {
      const std::size_t end = std::min(data.num_points(), batch + kBatch);
      pieces.assign((end - batch + kPiece - 1) / kPiece, {});
      with_threads(options.threads, [&] {
        tbb::parallel_for(std::size_t{0}, pieces.size(), [&](std::size_t p) {
          const std::size_t b = batch + p * kPiece;
          pieces[p] = format_xc_lines(data, b, std::min(end, b + kPiece));
        });
      });
      for (const auto& piece : pieces) sink.write(piece);
    }
    sink.finish();
  });
}

}  // namespace glide::data
