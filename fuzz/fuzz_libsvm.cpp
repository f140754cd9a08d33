// Fuzzes the libsvm parser: any input must parse into a valid dataset or throw glide::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "data/libsvm_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  glide::data::ReadOptions options;
  options.threads = 1;
  options.quiet = true;
  options.block_bytes = 64;
  options.skip_bad_lines = size % 2 == 1;
  options.index_base = size % 3 == 0 ? 1 : 0;
  try {
    const auto d = glide::data::parse_libsvm(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", options);
    // Inferred dimensions cover every id.
    d.validate("fuzz");
  } catch (const glide::Error&) {
  }
  return 0;
}
