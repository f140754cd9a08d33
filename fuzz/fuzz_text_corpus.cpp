// Fuzzes the text corpus reader: any input must give a valid dataset or throw glide::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "data/text_corpus.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  glide::data::TextCorpusOptions options;
  options.threads = 1;
  options.min_count = 1 + size % 3;
  options.window = 1 + size % 4;
  options.subsample = size % 2 ? 1e-2 : 0;
  try {
    const auto c = glide::data::parse_text_corpus(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", options);
    c.data.validate("fuzz");
    if (c.vocabulary.size() != c.data.num_features) __builtin_trap();
  } catch (const glide::Error&) {
  }
  return 0;
}
