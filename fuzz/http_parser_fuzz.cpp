// Fuzzes the server's HTTP/1.1 request parser (server/http_parser.h): any bytes, fed whole and
// again in pieces whose sizes the input chooses, must give the same requests and the same final
// error, every request within the limits, an error status from the parser's set, and the parser
// must take every byte it is offered until a request completes or it fails. Anything else (a
// crash, a hang, an exception, a difference between the two feedings) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "server/http_parser.h"

namespace {

using glide::server::HttpParser;
using glide::server::HttpRequest;

struct Outcome {
  std::vector<HttpRequest> requests;
  int error = 0;
};

// Small limits, so that inputs reach them.
glide::server::HttpLimits limits() {
  glide::server::HttpLimits l;
  l.max_request_line = 256;
  l.max_header_bytes = 2048;
  l.max_headers = 16;
  l.max_body_bytes = 1024;
  l.max_chunk_line = 64;
  return l;
}

// Feeds `input` in pieces of 1 + sizes[i % sizes.size()] % 17 bytes (whole when sizes is empty).
Outcome feed(std::string_view input, std::string_view sizes) {
  HttpParser parser(limits());
  Outcome out;
  std::size_t piece = 0;
  while (!input.empty()) {
    const std::size_t n =
        sizes.empty()
            ? input.size()
            : std::min<std::size_t>(
                  input.size(), 1 + static_cast<unsigned char>(sizes[piece % sizes.size()]) % 17);
    ++piece;
    std::string_view rest = input.substr(0, n);
    input.remove_prefix(n);
    for (;;) {
      const std::size_t used = parser.feed(rest);
      if (used > rest.size()) std::abort();
      rest.remove_prefix(used);
      if (parser.state() == HttpParser::State::kComplete) {
        out.requests.push_back(parser.take());
        continue;
      }
      if (parser.state() == HttpParser::State::kError) {
        out.error = parser.error_status();
        return out;
      }
      if (!rest.empty()) std::abort();  // neither done nor failed, yet it left bytes
      break;
    }
  }
  return out;
}

bool same(const HttpRequest& a, const HttpRequest& b) {
  return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
         a.minor_version == b.minor_version && a.headers == b.headers && a.body == b.body &&
         a.keep_alive == b.keep_alive && a.expects_continue == b.expects_continue;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first byte says how many of the following bytes choose piece sizes; the rest is HTTP.
  std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::size_t n_sizes = all.empty() ? 0 : std::min<std::size_t>(all.size() - 1, all[0] & 7);
  const std::string_view sizes = all.substr(all.empty() ? 0 : 1, n_sizes);
  const std::string_view input = all.substr(all.empty() ? 0 : 1 + n_sizes);

  const Outcome whole = feed(input, {});
  const Outcome pieces = feed(input, sizes.empty() ? std::string_view("\0", 1) : sizes);
  if (whole.error != pieces.error || whole.requests.size() != pieces.requests.size()) std::abort();
  for (std::size_t i = 0; i < whole.requests.size(); ++i)
    if (!same(whole.requests[i], pieces.requests[i])) std::abort();
  const auto l = limits();
  for (const HttpRequest& r : whole.requests) {
    if (r.body.size() > l.max_body_bytes || r.headers.size() > l.max_headers) std::abort();
    if (r.method.empty() || r.target.size() > l.max_request_line) std::abort();
    if (r.minor_version != 0 && r.minor_version != 1) std::abort();
  }
  switch (whole.error) {
    case 0:
    case 400:
    case 413:
    case 414:
    case 431:
    case 505:
      break;
    default:
      std::abort();
  }
  return 0;
}
