// An HTTP response as the routes build it, and its status line and headers as sent.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace glide::server {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // beyond type, length, connection
  std::string body;

  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
  void set_content(std::string content, std::string type) {
    body = std::move(content);
    content_type = std::move(type);
  }
};

// "OK", "Not Found", ... ("Unknown" for a status without a phrase here).
const char* reason_phrase(int status);

// The status line and header section of `response`, ending in the empty line. Content-Length is
// the body's size even when the body is not sent (an answer to HEAD). `close`: the connection
// closes after this answer (Connection: close); `keep_alive_1_0`: an HTTP/1.0 client asked to
// keep it (Connection: keep-alive).
std::string response_head(const HttpResponse& response, bool close, bool keep_alive_1_0);

}  // namespace glide::server
