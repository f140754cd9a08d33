// The HTTP front of `glide serve`: routes requests to the models of a registry, turns every
// failure into a JSON error with the right status, keeps the metrics and writes the access log.
// Connections are glide's own (server/connection_loop.h): one event loop reads and writes them,
// a pool of workers runs the routes. Stopping stops accepting and lets requests in flight finish.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "server/connection_loop.h"
#include "server/http_parser.h"
#include "server/http_response.h"
#include "server/metrics.h"
#include "server/model_registry.h"

namespace glide::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                                     // 0: any free port (see bind())
  std::size_t http_threads = 64;                       // requests handled at once (workers)
  std::size_t max_body_bytes = std::size_t{64} << 20;  // larger bodies get 413
  // Bounds on an answer (400 above): k, and instances x k labels in one request. 100,000 labels
  // are ~2 MB of JSON; the issue that set them saw 8 million labels make a 152 MB answer.
  std::uint32_t max_k = 1000;
  std::uint64_t max_response_labels = 100000;
  // Sampled mode's probes for requests that do not say (0: the model's default).
  std::uint32_t probes = 0;
  bool access_log = true;         // one line per request on stderr
  double keep_alive_seconds = 2;  // idle keep-alive connections also delay shutdown this long
  // A request's headers must arrive within header_timeout_seconds of its first byte, its body
  // within body_timeout_seconds of its headers (408 and close otherwise); an answer the client
  // does not read for body_timeout_seconds closes the connection.
  double header_timeout_seconds = 10;
  double body_timeout_seconds = 30;
  // Open connections at most; more wait in the listen backlog until one closes.
  std::size_t max_connections = 1024;
  // Bytes of request bodies being received at once, all connections together (at least
  // max_body_bytes): past it one connection reads on and the others wait (their deadline runs).
  std::size_t max_receiving_bytes = std::size_t{256} << 20;
};

class HttpServer {
 public:
  HttpServer(ModelRegistry& registry, Metrics& metrics, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port (the actual one for port 0). Throws Error.
  int bind();
  // Accepts and serves until stop(); returns once requests in flight are answered.
  void serve();
  // From any thread (a signal handler thread, a test): stop accepting and make serve() return.
  void stop();
  int port() const { return port_; }
  bool ready() const;
  // Client connections open now, and the bytes of request bodies they are sending.
  std::size_t open_connections() const;
  std::size_t receiving_bytes() const;

 private:
  // Runs one request (on a worker thread of the connection loop).
  void route(const HttpRequest& request, HttpResponse& response);

  ModelRegistry& registry_;
  Metrics& metrics_;
  const ServerOptions options_;
  std::unique_ptr<ConnectionLoop> loop_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

// One log line on stderr: "glide serve: MESSAGE".
void log_line(const std::string& message);

}  // namespace glide::server
