// How the server reads request bodies and binds: every body is bounded by --max-body-bytes however
// it is framed (Content-Length or chunked), a POST with neither framing has an empty body and is
// answered at once, and a port outside 0-65535 is refused instead of wrapping.
#include <doctest/doctest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "server/tests/test_server.h"

using namespace glide;
using namespace glide::server;
using namespace glide::server::testing;
using nlohmann::json;

namespace {

// Sends `request` as is on a new connection and returns the status line of the answer ("" when
// none came within 3 s) and the seconds it took.
std::pair<std::string, double> raw_exchange(int port, const std::string& request) {
  const auto start = std::chrono::steady_clock::now();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval timeout{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string answer;
  char buf[4096];
  while (answer.find("\r\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {answer.substr(0, answer.find("\r\n")), seconds};
}

// POSTs `body` chunked, in pieces of `piece` bytes.
httplib::Result post_chunked(const TestServer& s, const std::string& path, const std::string& body,
                             std::size_t piece) {
  return s.client().Post(
      path.c_str(),
      [&body, piece, sent = std::size_t{0}](std::size_t, httplib::DataSink& sink) mutable {
        if (sent >= body.size()) {
          sink.done();
          return true;
        }
        const std::size_t n = std::min(piece, body.size() - sent);
        sink.write(body.data() + sent, n);
        sent += n;
        return true;
      },
      "application/json");
}

}  // namespace

TEST_CASE("a chunked body is bounded like a sized one and read like one when it fits") {
  const std::string path = temp_path("framing.glide");
  write_model(path, 4);
  ServerOptions options;
  options.max_body_bytes = 4096;
  TestServer server({{"m", path}}, {}, options);

  // 1 MiB in 64 KiB chunks against a 4 KiB limit: httplib alone buffered all of it.
  const auto big = post_chunked(server, "/v1/models/m:predict", std::string(1 << 20, ' '), 65536);
  REQUIRE(big);
  CHECK(big->status == 413);
  CHECK(json::parse(big->body)["error"].get<std::string>().find("--max-body-bytes") !=
        std::string::npos);
  // Just over the limit, in small chunks.
  const auto over = post_chunked(server, "/v1/models/m:predict", std::string(4097, ' '), 100);
  REQUIRE(over);
  CHECK(over->status == 413);

  // A body that fits gets the same answer chunked as sized.
  const std::string body = predict_body(make_inputs(3, 4), 5).dump();
  REQUIRE(body.size() < 4096);
  const auto sized = post(server, "/v1/models/m:predict", body);
  const auto chunked = post_chunked(server, "/v1/models/m:predict", body, 7);
  REQUIRE(sized);
  REQUIRE(chunked);
  CHECK(sized->status == 200);
  CHECK(chunked->status == 200);
  CHECK(chunked->body == sized->body);

  // A sized body over the limit is still a 413, and the server answers afterwards.
  const auto sized_over = post(server, "/v1/models/m:predict", std::string(5000, ' '));
  REQUIRE(sized_over);
  CHECK(sized_over->status == 413);
  const auto live = server.client().Get("/v2/health/live");
  REQUIRE(live);
  CHECK(live->status == 200);
}

TEST_CASE("a POST with neither Content-Length nor chunked framing has an empty body") {
  const std::string path = temp_path("framing_empty.glide");
  write_model(path, 5);
  TestServer server({{"m", path}});
  // `curl -X POST .../m:reload` sends this; httplib waited for the peer to close (5 s), then 400.
  const auto [status, seconds] =
      raw_exchange(server.port, "POST /v1/models/m:reload HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status == "HTTP/1.1 200 OK");
  CHECK(seconds < 2.5);
  // A predict without a body is a 400 naming the JSON problem, at once.
  const auto [status2, seconds2] =
      raw_exchange(server.port, "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status2 == "HTTP/1.1 400 Bad Request");
  CHECK(seconds2 < 2.5);
  // A transfer coding httplib cannot decode, or a length beside chunked framing: 400.
  const auto [status3, seconds3] = raw_exchange(
      server.port,
      "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n");
  CHECK(status3 == "HTTP/1.1 400 Bad Request");
  CHECK(seconds3 < 2.5);
  const auto [status4, seconds4] =
      raw_exchange(server.port,
                   "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                   "chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n");
  CHECK(status4 == "HTTP/1.1 400 Bad Request");
  CHECK(seconds4 < 2.5);
}

TEST_CASE("a port outside 0-65535 is refused, naming it") {
  const std::string path = temp_path("framing_port.glide");
  write_model(path, 6);
  Metrics metrics;
  ModelRegistry registry({{"m", path}}, false, {}, &metrics);
  for (const int port : {70000, -1}) {
    ServerOptions options;
    options.port = port;
    HttpServer http(registry, metrics, options);
    std::string error;
    try {
      http.bind();
    } catch (const Error& e) {
      error = e.what();
    }
    CHECK(error.find(std::to_string(port)) != std::string::npos);
    CHECK(error.find("0-65535") != std::string::npos);
  }
  registry.stop();
}
