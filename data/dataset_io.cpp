#include "data/dataset_io.h"

#include "common/error.h"
#include "common/file_util.h"
#include "data/gds_format.h"
#include "data/libsvm_reader.h"
#include "data/sparse_text.h"
#include "data/text_corpus.h"
#include "data/xc_reader.h"
#include "data/xc_writer.h"
#include "data/zstd_io.h"

namespace glide::data {

Format parse_format(const std::string& name) {
  if (name == "auto") return Format::Auto;
  if (name == "gds") return Format::Gds;
  if (name == "xc") return Format::XcText;
  if (name == "libsvm" || name == "svmlight") return Format::Libsvm;
  if (name == "text") return Format::TextCorpus;
  fail("unknown format '" + name + "' (expected auto, gds, xc, libsvm or text)");
}

const char* format_name(Format format) {
  switch (format) {
    case Format::Auto:
      return "auto";
    case Format::Gds:
      return "gds";
    case Format::XcText:
      return "xc";
    case Format::Libsvm:
      return "libsvm";
    case Format::TextCorpus:
      return "text";
  }
  return "?";
}

Format detect_format(const std::string& path) {
  auto source = open_text_source(path);
  std::string head;
  // The first line decides; 1 MiB is enough for any header (a libsvm line may be cut, which is
  // fine: it is not three bare integers either way).
  while (head.find('\n') == std::string::npos && head.size() < (1u << 20))
    if (!source->read_more(head, 1 << 16)) break;
  if (starts_with_gds_magic({reinterpret_cast<const std::uint8_t*>(head.data()), head.size()}))
    return Format::Gds;
  if (head.empty()) fail(path, "empty file, expected a dataset");
  const std::size_t nl = head.find('\n');
  if (looks_like_xc_header(std::string_view(head).substr(0, nl))) return Format::XcText;
  return Format::Libsvm;
}

Dataset read_dataset(const std::string& path, const ReadOptions& options, ReadReport* report) {
  Format format = options.format;
  if (format == Format::Auto) {
    // The magic decides for .gds without opening a text stream (a .gds is zstd inside, not out).
    std::FILE* f = std::fopen(path.c_str(), "rb");
    char magic[8] = {};
    const bool gds = f && std::fread(magic, 1, 8, f) == 8 &&
                     starts_with_gds_magic({reinterpret_cast<std::uint8_t*>(magic), 8});
    if (f) std::fclose(f);
    format = gds ? Format::Gds : detect_format(path);
  }
  switch (format) {
    case Format::Gds: {
      // Files written before readers dropped repeated labels may still hold them.
      Dataset d = read_gds(path, options.threads);
      ReadReport local;
      ReadReport& rep = report ? *report : local;
      std::size_t first = 0;
      rep.repeated_labels = d.drop_repeated_labels(&first);
      if (rep.repeated_labels) rep.first_repeat = path + ": point " + std::to_string(first);
      warn_repeated_labels(path, rep, options.quiet);
      return d;
    }
    case Format::XcText:
      return read_xc_text(path, options, report);
    case Format::Libsvm:
      return read_libsvm(path, options, report);
    case Format::TextCorpus: {
      TextCorpusOptions corpus;
      corpus.threads = options.threads;
      return read_text_corpus(path, corpus).data;
    }
    case Format::Auto:
      break;
  }
  fail(path, "cannot tell the dataset format");
}

void write_dataset(const std::string& path, const Dataset& data, const WriteOptions& options) {
  if (ends_with(path, ".gds")) {
    GdsWriteOptions gds;
    gds.level = options.level;
    gds.threads = options.threads;
    return write_gds(path, data, gds);
  }
  TextWriteOptions text;
  text.compress = options.compress;
  text.level = options.level;
  text.threads = options.threads;
  write_xc_text(path, data, text);
}

}  // namespace glide::data
