#include "server/http_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace glide::server {

namespace {

// RFC 9110 token characters (method and field names).
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(c); });
}

bool is_ctl(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX sequences decoded; a '%' not followed by two hex digits stays as it is.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (n == name) return &v;
  return nullptr;
}

HttpParser::HttpParser(HttpLimits limits) : limits_(limits) {}

HttpRequest HttpParser::take() {
  HttpRequest out = std::move(request_);
  request_ = HttpRequest{};
  state_ = State::kIdle;
  step_ = Step::kRequestLine;
  line_.clear();
  header_bytes_ = header_count_ = 0;
  remaining_ = 0;
  return out;
}

bool HttpParser::fail(int status, std::string message) {
  state_ = State::kError;
  error_status_ = status;
  error_message_ = std::move(message);
  return false;
}

std::size_t HttpParser::feed(std::string_view data) {
  std::size_t used = 0;
  while (used < data.size() &&
         (state_ == State::kIdle || state_ == State::kHead || state_ == State::kBody)) {
    if (step_ == Step::kLengthBody || step_ == Step::kChunkData) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - used));
      request_.body.append(data.data() + used, n);
      used += n;
      remaining_ -= n;
      if (remaining_ == 0) {
        if (step_ == Step::kLengthBody)
          complete();
        else
          step_ = Step::kChunkEnd;
      }
      continue;
    }
    used += feed_lines(data.substr(used));
  }
  return used;
}

// Gathers one line (up to its LF) from `data` and acts on it once whole; returns the bytes used.
std::size_t HttpParser::feed_lines(std::string_view data) {
  if (state_ == State::kIdle) state_ = State::kHead;
  const void* lf = std::memchr(data.data(), '\n', data.size());
  const std::size_t n =
      lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - data.data()) + 1 : data.size();
  const bool in_headers = step_ == Step::kHeaderLine || step_ == Step::kTrailerLine;
  // The limit counts the line without its line end (CR LF or LF); a line not ended yet may still
  // end in a CR.
  std::size_t length = line_.size() + n;
  if (lf) {
    const char before_lf = n >= 2 ? data[n - 2] : (line_.empty() ? '\0' : line_.back());
    length -= before_lf == '\r' && length >= 2 ? 2 : 1;
  }
  if (length > line_limit() + (lf ? 0 : 1)) {
    switch (step_) {
      case Step::kRequestLine:
        fail(414, "the request line is longer than " + std::to_string(limits_.max_request_line) +
                      " bytes");
        return n;
      case Step::kHeaderLine:
      case Step::kTrailerLine:
        break;  // the header section's limit below says it
      default:
        fail(400, "a chunk-size line is longer than " + std::to_string(limits_.max_chunk_line) +
                      " bytes");
        return n;
    }
  }
  if (in_headers) {
    header_bytes_ += n;
    if (header_bytes_ > limits_.max_header_bytes) {
      fail(431, "the header section is larger than " + std::to_string(limits_.max_header_bytes) +
                    " bytes");
      return n;
    }
  }
  line_.append(data.data(), n);
  if (!lf) return n;
  std::string_view line(line_);
  line.remove_suffix(1);  // LF; a bare LF ends a line too (RFC 9112 2.2)
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (on_line(line)) line_.clear();
  return n;
}

std::size_t HttpParser::line_limit() const {
  switch (step_) {
    case Step::kRequestLine:
      return limits_.max_request_line;
    case Step::kHeaderLine:
    case Step::kTrailerLine:
      return limits_.max_header_bytes;
    default:
      return limits_.max_chunk_line;
  }
}

bool HttpParser::on_line(std::string_view line) {
  switch (step_) {
    case Step::kRequestLine:
      return on_request_line(line);
    case Step::kHeaderLine:
      return on_header_line(line, false);
    case Step::kTrailerLine:
      return on_header_line(line, true);
    case Step::kChunkSize:
      return on_chunk_size(line);
    case Step::kChunkEnd:
      if (!line.empty()) return fail(400, "a chunk's data is longer than its size");
      step_ = Step::kChunkSize;
      return true;
    default:
      return true;
  }
}

bool HttpParser::on_request_line(std::string_view line) {
  if (line.empty()) {
    // Empty lines before a request line are ignored (RFC 9112 2.2): still no request begun.
    state_ = State::kIdle;
    return true;
  }
  const auto sp1 = line.find(' ');
  const auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1)
    return fail(400, "malformed request line (want METHOD TARGET HTTP/1.1)");
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed request line: bad method");
  if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        return c == ' ' || is_ctl(static_cast<unsigned char>(c));
      }))
    return fail(400, "malformed request line: bad request target");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "malformed request line: bad HTTP version");
  if (version[5] != '1')
    return fail(505, "HTTP version " + std::string(version) + " is not supported");
  request_.method = method;
  request_.target = target;
  request_.minor_version = version[7] == '0' ? 0 : 1;  // 1.x above 1 is read as 1.1
  // origin-form /path?query, absolute-form http://host/path?query, or asterisk-form *.
  std::string_view rest = target;
  if (rest.substr(0, 7) == "http://" || rest.substr(0, 8) == "https://") {
    rest.remove_prefix(rest.find("//") + 2);
    const auto slash = rest.find('/');
    rest = slash == std::string_view::npos ? "/" : rest.substr(slash);
  } else if (rest != "*" && rest.front() != '/') {
    return fail(400, "malformed request line: the target must start with /");
  }
  const auto q = rest.find('?');
  request_.path = percent_decode(rest.substr(0, q));
  if (q != std::string_view::npos) request_.query = rest.substr(q + 1);
  step_ = Step::kHeaderLine;
  return true;
}

bool HttpParser::on_header_line(std::string_view line, bool trailer) {
  if (line.empty()) {
    if (!trailer) return on_headers_end();
    complete();
    return true;
  }
  if (line.front() == ' ' || line.front() == '\t')
    return fail(400, "a header line starts with whitespace (obsolete line folding)");
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "a header line has no ':'");
  const std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
  if (!is_token(name)) return fail(400, "malformed header name '" + std::string(name) + "'");
  if (std::any_of(value.begin(), value.end(),
                  [](char c) { return c != '\t' && is_ctl(static_cast<unsigned char>(c)); }))
    return fail(400, "header '" + std::string(name) + "' has a control character in its value");
  if (++header_count_ > limits_.max_headers)
    return fail(431, "more than " + std::to_string(limits_.max_headers) + " header fields");
  if (trailer) return true;  // trailers are read and dropped: they never change the framing
  std::string lower(name);
  for (char& c : lower) c = ascii_lower(c);
  request_.headers.emplace_back(std::move(lower), std::string(value));
  return true;
}

bool HttpParser::on_headers_end() {
  const std::string *transfer_encoding = nullptr, *content_length = nullptr;
  int encodings = 0, lengths = 0;
  bool close = false, keep_alive = false;
  for (const auto& [name, value] : request_.headers) {
    if (name == "transfer-encoding") {
      transfer_encoding = &value;
      ++encodings;
    } else if (name == "content-length") {
      content_length = &value;
      ++lengths;
    } else if (name == "connection") {
      std::string_view tokens = value;
      while (!tokens.empty()) {
        const auto comma = tokens.find(',');
        const std::string_view token = trim(tokens.substr(0, comma));
        close = close || iequals(token, "close");
        keep_alive = keep_alive || iequals(token, "keep-alive");
        tokens = comma == std::string_view::npos ? "" : tokens.substr(comma + 1);
      }
    }
  }
  // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 only when asked to keep it.
  request_.keep_alive = !close && (request_.minor_version == 1 || keep_alive);
  bool chunked = false;
  std::uint64_t length = 0;
  if (encodings > 0) {
    if (lengths > 0) return fail(400, "Content-Length and Transfer-Encoding together");
    if (request_.minor_version == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (encodings > 1 || !iequals(*transfer_encoding, "chunked"))
      return fail(400,
                  "Transfer-Encoding '" + *transfer_encoding + "' is not supported (only chunked)");
    chunked = true;
  } else if (lengths > 0) {
    if (lengths > 1) return fail(400, "more than one Content-Length");
    const std::string& v = *content_length;
    if (v.empty() || v.size() > 19 ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fail(400, "Content-Length '" + v + "' is not a number of bytes");
    length = std::stoull(v);
    if (length > limits_.max_body_bytes)
      return fail(413, "the body (" + v + " bytes) is larger than " +
                           std::to_string(limits_.max_body_bytes) + " bytes");
  }
  const bool body_to_come = chunked || length > 0;
  if (const std::string* expect = request_.header("expect"))
    request_.expects_continue =
        body_to_come && request_.minor_version == 1 && iequals(*expect, "100-continue");
  if (chunked) {
    state_ = State::kBody;
    step_ = Step::kChunkSize;
  } else if (length > 0) {
    state_ = State::kBody;
    step_ = Step::kLengthBody;
    remaining_ = length;
    request_.body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(length, 1 << 20)));
  } else {
    complete();  // neither framing: the body is empty (RFC 9112 6.3)
  }
  return true;
}

bool HttpParser::on_chunk_size(std::string_view line) {
  const std::uint64_t allowance = limits_.max_body_bytes - request_.body.size();
  std::uint64_t size = 0;
  std::size_t i = 0;
  for (; i < line.size() && hex_value(line[i]) >= 0; ++i) {
    const auto digit = static_cast<std::uint64_t>(hex_value(line[i]));
    if (size > (allowance - std::min(allowance, digit)) / 16)
      return fail(413, "the chunked body is larger than " + std::to_string(limits_.max_body_bytes) +
                           " bytes");
    size = size * 16 + digit;
  }
  if (i == 0) return fail(400, "malformed chunk size");
  // What may follow the size: whitespace, then ";" and chunk extensions (ignored).
  const std::string_view rest = trim(line.substr(i));
  if (!rest.empty() && rest.front() != ';') return fail(400, "malformed chunk size");
  if (std::any_of(rest.begin(), rest.end(),
                  [](char c) { return c != '\t' && is_ctl(static_cast<unsigned char>(c)); }))
    return fail(400, "a control character in a chunk extension");
  if (size > allowance)
    return fail(413, "the chunked body is larger than " + std::to_string(limits_.max_body_bytes) +
                         " bytes");
  if (size == 0) {
    step_ = Step::kTrailerLine;
    return true;
  }
  step_ = Step::kChunkData;
  remaining_ = size;
  return true;
}

void HttpParser::complete() {
  state_ = State::kComplete;
}

}  // namespace glide::server
