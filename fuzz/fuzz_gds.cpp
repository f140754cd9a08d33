// Fuzzes the .gds loader: any input must load into a valid dataset or throw glide::Error. The
// seed corpus should hold a real .gds file (scripts/fuzz makes one), so mutations reach the blocks.
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "data/gds_format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    // Arrays are bounded so a forged header cannot ask for gigabytes.
    const auto d = glide::data::parse_gds({data, size}, "fuzz", 1, std::uint64_t{64} << 20);
    d.validate("fuzz");
  } catch (const glide::Error&) {
  }
  return 0;
}
