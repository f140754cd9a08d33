// libFuzzer target for the model file reader: any byte sequence must open and read as data or
// fail with glide::Error, never crash, hang or allocate without bound.
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/error.h"
#include "engine/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  try {
    const glide::engine::ModelFileReader reader(bytes, "fuzz.glide");
    for (const auto& section : reader.sections()) {
      // The reader caps claimed sizes at 64 KiB per stored byte; skip the few large claims so
      // that a run stays fast and within libFuzzer's memory limit.
      if (section.raw_bytes > (std::uint64_t{16} << 20)) continue;
      try {
        (void)reader.read_bytes(section.name);
      } catch (const glide::Error&) {
      }
    }
  } catch (const glide::Error&) {
  }
  return 0;
}
