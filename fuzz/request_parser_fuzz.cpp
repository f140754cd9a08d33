// Fuzzes the REST server's request parsing (v1 and v2 bodies): any input must parse into
// in-range instances or throw RequestError; anything else (a crash, another exception, an id out
// of range slipping through) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/request_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const glide::server::InputLimits limits{1000, 100, 5};
  for (const bool v2 : {false, true}) {
    try {
      const auto r = v2 ? glide::server::parse_infer_request(body, limits)
                        : glide::server::parse_predict_request(body, limits);
      if (r.k < 1 || r.k > limits.num_labels) std::abort();
      if (r.offsets.back() != r.ids.size() || r.ids.size() != r.values.size()) std::abort();
      for (const auto id : r.ids)
        if (id >= limits.num_features) std::abort();
    } catch (const glide::server::RequestError&) {
    }
  }
  return 0;
}
