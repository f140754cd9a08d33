// The server's connection layer over loopback with raw sockets: clients that send slowly or not
// at all neither hold up others nor stay forever (408, idle close), pipelined requests are
// answered in order, the number of open connections is capped, 100-continue and HTTP/1.0.
// Deadlines are set short through ServerOptions so that the suite stays fast; assertions are on
// what is answered and in which order, with waits bounded by the deadlines.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/timing.h"
#include "server/tests/test_server.h"

using namespace glide;
using namespace glide::server;
using namespace glide::server::testing;
using nlohmann::json;

namespace {

struct RawResponse {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

// A client connection that writes exactly the bytes given and reads answers by Content-Length.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void send(std::string_view bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }
  // The next answer, or status 0 when none came within `seconds` (or the server closed).
  // `head_only`: the answer to a HEAD, which has no body whatever its Content-Length.
  RawResponse read(double seconds, bool head_only = false) {
    RawResponse r;
    std::size_t end = 0;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(seconds)) return r;
    r.head = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    r.status = std::stoi(r.head.substr(9, 3));
    std::size_t length = 0;
    if (const auto at = r.head.find("Content-Length: "); at != std::string::npos)
      length = std::stoul(r.head.substr(at + 16));
    if (head_only || r.status == 100) length = 0;
    while (buffer_.size() < length)
      if (!fill(seconds)) return {};
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Whether the server closed the connection (end of stream) within `seconds`, with nothing
  // more sent.
  bool closed_by_server(double seconds) { return !fill(seconds) && eof_ && buffer_.empty(); }
  // Whether anything arrives within `seconds`.
  bool quiet_for(double seconds) { return !fill(seconds) && !eof_; }

 private:
  bool fill(double seconds) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(seconds * 1000)) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

std::string error_of(const RawResponse& r) {
  return json::parse(r.body).value("error", std::string());
}

std::string model_path() {
  const std::string path = temp_path("slow_client.glide");
  write_model(path, 21);
  return path;
}

}  // namespace

TEST_CASE("pipelined requests are answered in order, sent at once or byte by byte") {
  const std::string path = model_path();
  const engine::InferenceModel predictor(path, false);
  TestServer server({{"m", path}});
  const auto xs = make_inputs(2, 3);
  const auto want = expected(predictor, xs, 4);
  const std::string body = predict_body({xs[1]}, 4).dump();
  const std::string requests =
      "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body +
      "HEAD /v1/models/m HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /v1/models/m:reload HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /v1/models/m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  for (const bool byte_by_byte : {false, true}) {
    CAPTURE(byte_by_byte);
    RawClient client(server.port);
    if (byte_by_byte)
      for (const char c : requests) client.send(std::string_view(&c, 1));
    else
      client.send(requests);
    const RawResponse live = client.read(10);
    CHECK(live.status == 200);
    CHECK(live.body == "{\"live\":true}");
    const RawResponse predicted = client.read(10);
    REQUIRE(predicted.status == 200);
    CHECK(same(json::parse(predicted.body)["predictions"][0], want[1]));
    const RawResponse head = client.read(10, true);
    CHECK(head.status == 200);
    CHECK(head.head.find("Content-Length: 0") == std::string::npos);
    const RawResponse reload = client.read(10);  // a POST with no body: answered at once
    REQUIRE(reload.status == 200);
    const std::string version = json::parse(reload.body)["version"];
    const RawResponse status = client.read(10);
    REQUIRE(status.status == 200);
    // In order: the status after the reload names the version the reload made.
    CHECK(json::parse(status.body)["model_version_status"][0]["version"] == version);
    CHECK(status.head.find("Connection: close") != std::string::npos);
    CHECK(client.closed_by_server(5));
  }
  // A client that shuts its side right after sending still gets every answer, then the close.
  RawClient half(server.port);
  half.send("GET /v2/health/live HTTP/1.1\r\n\r\nGET /v2/health/ready HTTP/1.1\r\n\r\n");
  half.shutdown_write();
  CHECK(half.read(10).body == "{\"live\":true}");
  CHECK(half.read(10).body == "{\"ready\":true}");
  CHECK(half.closed_by_server(5));
}

TEST_CASE("stalled clients hold no worker: others are answered before the header deadline") {
  const std::string path = model_path();
  ServerOptions options;
  options.http_threads = 4;  // far fewer workers than stalled connections
  options.header_timeout_seconds = 3;
  TestServer server({{"m", path}}, {}, options);
  // 50 connections that send part of their headers and stall.
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 50; ++i) {
    stalled.push_back(std::make_unique<RawClient>(server.port));
    stalled.back()->send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n");
  }
  REQUIRE(eventually([&] { return server.http->open_connections() == 50; }));
  const auto start = std::chrono::steady_clock::now();
  const std::string body = predict_body(make_inputs(1, 5), 3).dump();
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    const auto r = post(server, "/v1/models/m:predict", body);
    answered += r && r->status == 200;
  }
  CHECK(answered == 5);
  CHECK(seconds_since(start) < options.header_timeout_seconds);
  // Then each stalled connection gets a 408 with a JSON error and is closed.
  int timed_out = 0;
  for (auto& c : stalled) {
    const RawResponse r = c->read(10);
    timed_out += r.status == 408 &&
                 error_of(r) == "the request's headers did not arrive within 3 s" &&
                 c->closed_by_server(5);
  }
  CHECK(timed_out == 50);
  stalled.clear();
  CHECK(eventually([&] { return server.http->open_connections() == 0; }));
  CHECK(server.metrics.requests("health_live", 408) == 50);
}

TEST_CASE("a body that stops arriving is a 408; an idle keep-alive connection is closed") {
  const std::string path = model_path();
  ServerOptions options;
  options.body_timeout_seconds = 0.5;
  options.keep_alive_seconds = 0.5;
  TestServer server({{"m", path}}, {}, options);
  RawClient slow(server.port);
  slow.send("POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ins");
  const RawResponse r = slow.read(10);
  CHECK(r.status == 408);
  CHECK(error_of(r) == "the request's body did not arrive within 0.5 s");
  CHECK(server.http->receiving_bytes() == 0);  // the refused body no longer counts
  CHECK(r.head.find("Connection: close") != std::string::npos);
  CHECK(slow.closed_by_server(5));
  CHECK(eventually([&] { return server.metrics.requests("predict", 408) == 1; }));

  RawClient idle(server.port);
  idle.send("GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(idle.read(10).status == 200);
  CHECK(idle.closed_by_server(10));  // no answer, just closed
}

TEST_CASE("open connections are capped; the next waits until one closes") {
  const std::string path = model_path();
  ServerOptions options;
  options.max_connections = 4;
  TestServer server({{"m", path}}, {}, options);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<RawClient>(server.port));
  REQUIRE(eventually([&] { return server.http->open_connections() == 4; }));
  held[0]->send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(held[0]->read(10).body.find("\nglide_http_open_connections 4\n") != std::string::npos);
  RawClient waiting(server.port);  // the kernel completes the handshake; the server waits
  waiting.send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(waiting.quiet_for(0.5));
  CHECK(server.http->open_connections() == 4);
  held.pop_back();
  const RawResponse r = waiting.read(10);
  CHECK(r.status == 200);
  CHECK(server.http->open_connections() <= 4);
}

TEST_CASE("bodies beyond the receiving budget wait their turn and all arrive") {
  const std::string path = model_path();
  ServerOptions options;
  options.max_body_bytes = 1000;
  options.max_receiving_bytes = 1000;  // less than the three bodies together
  TestServer server({{"m", path}}, {}, options);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawClient>(server.port));
    clients.back()->send(
        "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n" +
        std::string(600, ' '));
  }
  // All of it read (the last connection to read found the budget spent and was paused).
  REQUIRE(eventually([&] { return server.http->receiving_bytes() == 1800; }));
  for (auto& c : clients) c->send(std::string(300, ' '));
  for (auto& c : clients) {
    const RawResponse r = c->read(10);
    CHECK(r.status == 400);  // the whole body arrived: a JSON error about it, not a 408
    CHECK(error_of(r).find("malformed JSON") == 0);
  }
  CHECK(server.http->receiving_bytes() == 0);
}

TEST_CASE("100-continue, HTTP/1.0, and the limits' JSON errors") {
  const std::string path = model_path();
  const engine::InferenceModel predictor(path, false);
  TestServer server({{"m", path}});
  const auto xs = make_inputs(1, 8);
  const std::string body = predict_body(xs, 3).dump();

  RawClient expecting(server.port);
  expecting.send(
      "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  CHECK(expecting.read(10).status == 100);
  expecting.send(body);
  const RawResponse answer = expecting.read(10);
  REQUIRE(answer.status == 200);
  CHECK(same(json::parse(answer.body)["predictions"][0], expected(predictor, xs, 3)[0]));

  RawClient old(server.port);
  old.send("GET /v2/health/live HTTP/1.0\r\n\r\n");
  const RawResponse one_zero = old.read(10);
  CHECK(one_zero.status == 200);
  CHECK(one_zero.head.find("Connection: close") != std::string::npos);
  CHECK(old.closed_by_server(5));
  RawClient kept(server.port);
  kept.send("GET /v2/health/live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(kept.read(10).head.find("Connection: keep-alive") != std::string::npos);
  kept.send("GET /v2/health/ready HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(kept.read(10).body == "{\"ready\":true}");

  auto refused = [&](const std::string& request) {
    RawClient c(server.port);
    c.send(request);
    const RawResponse r = c.read(10);
    CHECK(!error_of(r).empty());
    CHECK(c.closed_by_server(5));
    return r.status;
  };
  CHECK(refused("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n") == 414);
  CHECK(refused("GET / HTTP/1.1\r\nX: " + std::string(70000, 'b') + "\r\n\r\n") == 431);
  CHECK(refused("GET / HTTP/3.0\r\n\r\n") == 505);
  CHECK(refused("POST /v1/models/m:predict HTTP/1.1\r\nContent-Length: 2\r\n"
                "Content-Length: 2\r\n\r\n{}") == 400);
  CHECK(eventually([&] { return server.metrics.requests("unknown", 414) == 1; }));
}
