// Fuzzes the XC text parser: any input must parse into a valid dataset or throw glide::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "data/xc_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  glide::data::ReadOptions options;
  options.threads = 1;
  options.quiet = true;
  options.block_bytes = 64;  // exercise block boundaries
  options.skip_bad_lines = size % 2 == 1;
  try {
    const auto d = glide::data::parse_xc_text(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", options);
    d.validate("fuzz");
  } catch (const glide::Error&) {
  }
  return 0;
}
