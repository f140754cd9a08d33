// An incremental HTTP/1.1 request parser (RFC 9112 framing), with no sockets: bytes go in as they
// arrive, split anywhere, and complete requests come out one at a time, so pipelined requests
// are read in order. Every size is bounded (request line, header section, body however it is
// framed), and framings that two parsers could read differently (request smuggling: a length
// beside chunked, two lengths, a transfer coding other than chunked, folded or spaced header
// names) are refused instead of guessed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace glide::server {

struct HttpLimits {
  std::size_t max_request_line = 8192;   // request line (and so the target): 414 above
  std::size_t max_header_bytes = 65536;  // the header section (trailers included): 431 above
  std::size_t max_headers = 100;         // header fields (trailers included): 431 above
  std::size_t max_body_bytes = std::size_t{64} << 20;  // the body, sized or chunked: 413 above
  std::size_t max_chunk_line = 4096;  // a chunk-size line with its extensions: 400 above
};

struct HttpRequest {
  std::string method;
  std::string target;     // as sent
  std::string path;       // the target's path, percent-decoded, without the query
  std::string query;      // after '?', as sent
  int minor_version = 1;  // HTTP/1.0 or HTTP/1.1
  // Field names in lower case, values without surrounding whitespace, in the order sent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;         // HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive
  bool expects_continue = false;  // "Expect: 100-continue" with a body to come

  // The value of the first field named `name` (lower case), or nullptr.
  const std::string* header(std::string_view name) const;
};

class HttpParser {
 public:
  enum class State { kIdle, kHead, kBody, kComplete, kError };

  explicit HttpParser(HttpLimits limits = {});

  // Reads from `data` up to the end of one request (or the error); returns the bytes used. Bytes
  // after a complete request are left for the next one: call take() and feed them again.
  std::size_t feed(std::string_view data);

  // kIdle: nothing of the next request yet (empty lines before it do not count); kHead: reading
  // the request line and headers; kBody: reading the body; kComplete: a request is ready for
  // take(); kError: see error_*.
  State state() const { return state_; }
  // The complete request; the parser is then ready for the next one.
  HttpRequest take();
  // What is known of the request so far (method and path once the request line is read): for
  // logging a request that failed or timed out.
  const HttpRequest& partial() const { return request_; }

  // After kError: the status to answer (400, 413, 414, 431 or 505) and what was wrong.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  enum class Step {
    kRequestLine,
    kHeaderLine,
    kLengthBody,
    kChunkSize,
    kChunkData,
    kChunkEnd,
    kTrailerLine
  };

  std::size_t feed_lines(std::string_view data);
  bool fail(int status, std::string message);
  std::size_t line_limit() const;
  bool on_line(std::string_view line);
  bool on_request_line(std::string_view line);
  bool on_header_line(std::string_view line, bool trailer);
  bool on_headers_end();
  bool on_chunk_size(std::string_view line);
  void complete();

  HttpLimits limits_;
  State state_ = State::kIdle;
  Step step_ = Step::kRequestLine;
  HttpRequest request_;
  std::string line_;              // a line being gathered across feeds
  std::size_t header_bytes_ = 0;  // of the header section and trailers so far
  std::size_t header_count_ = 0;  // fields so far, trailers included
  std::uint64_t remaining_ = 0;   // body or chunk bytes still to come
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace glide::server
