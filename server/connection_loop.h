// glide's HTTP/1.1 connection layer: one thread runs an epoll loop that accepts connections and
// reads and writes all of them (nonblocking), so a client that sends slowly or not at all costs a
// descriptor and a buffer, never a thread. Complete requests go to a pool of worker threads that
// run the routes; their answers come back to the loop, which sends them in request order.
// Deadlines bound how long a request's headers and body may take to arrive (408), how long an
// idle keep-alive connection stays, and how long an answer may wait for the client to take it;
// the number of open connections is capped. Linux only (epoll, eventfd).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/http_connection.h"
#include "server/http_parser.h"
#include "server/http_response.h"

namespace glide::server {

class WorkerPool;

struct LoopOptions {
  HttpLimits limits;
  std::size_t worker_threads = 64;
  double header_timeout_seconds = 10;  // first byte of a request to the end of its headers
  double body_timeout_seconds = 30;    // end of the headers to the end of the body; also how long
                                       // an answer may wait for the client to read some of it
  double keep_alive_seconds = 2;       // an idle connection between requests
  std::size_t max_connections = 1024;  // beyond it, new connections wait in the listen backlog
  // Bytes of bodies being received, all connections together: beyond it, connections in the
  // middle of a body are not read (their body deadline runs on) until others are done, so that
  // many clients each sending a body of max_body_bytes cannot take all memory. At least
  // max_body_bytes is always allowed.
  std::size_t max_receiving_bytes = std::size_t{256} << 20;
};

struct LoopCallbacks {
  // Runs a request on a worker thread and answers it (exceptions become 500s).
  std::function<HttpResponse(const HttpRequest&)> handle;
  // The answer for a request the loop refuses itself (a framing error, a timeout).
  std::function<HttpResponse(int status, const std::string& message)> error;
  // Every answer, once decided (metrics, access log): the request as far as it was read.
  std::function<void(const HttpRequest&, int status, double seconds)> answered;
};

class ConnectionLoop {
 public:
  ConnectionLoop(LoopOptions options, LoopCallbacks callbacks);
  ~ConnectionLoop();
  ConnectionLoop(const ConnectionLoop&) = delete;
  ConnectionLoop& operator=(const ConnectionLoop&) = delete;

  // Binds and listens on host:port (0: a free port); returns the port bound. Throws Error.
  int listen(const std::string& host, int port);
  // Serves until stop(), then stops accepting, finishes the requests it has and returns.
  void run();
  // From any thread.
  void stop();
  std::size_t open_connections() const { return open_.load(); }
  // Bytes of request bodies being received now, all connections together.
  std::size_t receiving_bytes() const { return receiving_bytes_.load(); }

 private:
  struct Completion {
    std::uint64_t id;
    HttpResponse response;
  };

  void accept_all();
  void set_accepting(bool on);
  void on_event(Connection& c, std::uint32_t events);
  void process(Connection& c);
  void dispatch(Connection& c, HttpRequest request);
  void take_completions();
  void send_answer(Connection& c, HttpResponse response, bool close);
  void refuse(Connection& c, int status, const std::string& message);
  // Sends what it can; false when the connection is to be closed.
  bool flush(Connection& c);
  void update_events(Connection& c);
  void set_read_deadline(Connection& c, LoopClock::time_point when);
  // Counts the connection's body in progress in receiving_bytes_ (0 once it is not receiving).
  void count_receiving(Connection& c);
  bool receiving_budget_spent() const;
  void check_deadlines();
  void begin_drain();
  // Connections are closed between events (reap()), never while a caller still holds one.
  void close_later(Connection& c);
  void reap();
  int wait_milliseconds() const;

  const LoopOptions options_;
  const LoopCallbacks callbacks_;
  int epoll_ = -1, wake_ = -1, listen_ = -1;
  bool accepting_ = false, draining_ = false;
  LoopClock::time_point accept_paused_until_{};  // after running out of descriptors
  LoopClock::time_point next_check_ = LoopClock::time_point::max();
  std::uint64_t next_id_ = 2;  // 0 and 1 tag the listening socket and the wake-up event
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<std::uint64_t> doomed_;
  std::atomic<std::size_t> receiving_bytes_{0};    // written by the loop's thread only
  std::vector<std::uint64_t> waiting_for_budget_;  // not read while the budget was spent
  std::uint64_t budget_leader_ = 0;                // reads on while it is (0: none)
  std::unique_ptr<WorkerPool> workers_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::size_t> open_{0};
  std::mutex completions_mutex_;
  std::vector<Completion> completions_;
};

}  // namespace glide::server
