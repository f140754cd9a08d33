// Fuzzes the XC split-file reader: the input is cut at its first zero byte into a features file
// and a labels file; any pair must read into a valid dataset or throw glide::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "data/xc_split_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::size_t cut = std::min(all.find('\0'), all.size());
  glide::data::ReadOptions options;
  options.threads = 1;
  options.quiet = true;
  options.block_bytes = 64;  // exercise block boundaries
  try {
    const auto d = glide::data::parse_xc_split(
        all.substr(0, cut), "x.txt", all.substr(std::min(cut + 1, size)), "y.txt", options);
    d.validate("fuzz");
  } catch (const glide::Error&) {
  }
  return 0;
}
