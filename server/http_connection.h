// One client connection of the event loop (server/connection_loop.h): its socket, the bytes
// received and not yet parsed, the parser of the request being read, the answers waiting to be
// sent, and where the connection is in its life. Owned and touched by the loop's thread only.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "server/http_parser.h"

namespace glide::server {

using LoopClock = std::chrono::steady_clock;

class Connection {
 public:
  enum class Phase {
    kReading,    // reading a request (or waiting for the next one)
    kInFlight,   // a request is with the workers; reading waits for its answer (answers in order)
    kClosing,    // sending the last answer, then closing
    kLingering,  // answered and shut for writing; reading what the client still sends, then closing
  };
  enum class ReadResult { kData, kNothing, kEndOfStream, kFailed };

  Connection(int fd, std::uint64_t id, const HttpLimits& limits);
  ~Connection();  // closes the socket
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  std::uint64_t id() const { return id_; }

  // One recv() into the input (dropped while lingering).
  ReadResult read_some();
  // Sends what it can of the queued answers; false when the connection failed.
  bool flush();
  void queue_output(std::string bytes);
  std::size_t output_bytes() const { return output_bytes_; }
  // Received bytes not parsed yet.
  std::size_t unparsed_bytes() const { return input_.size() - input_start_; }
  // Feeds the unparsed input to the parser; returns the parser's state.
  HttpParser::State parse();
  // Stop sending (FIN) while still reading.
  void shutdown_write();

  HttpParser parser;
  Phase phase = Phase::kReading;
  bool peer_closed = false;               // the client shut its side (an answer may still go out)
  bool closed = false;                    // to be closed by the loop once it is done with the event
  bool continue_sent = false;             // "100 Continue" went out for the request being read
  bool head_only = false;                 // the request in flight is a HEAD: its answer has no body
  bool keep_alive = true;                 // the request in flight lets the connection stay open
  int minor_version = 1;                  // of the request in flight
  std::uint32_t events = 0;               // the epoll events registered for it now
  std::size_t receiving = 0;              // body bytes of it the loop counts as being received
  bool waiting_for_budget = false;        // unread until the loop's receiving budget allows
  LoopClock::time_point request_start{};  // first byte of the request being read
  LoopClock::time_point read_deadline{};  // see ConnectionLoop::check_deadlines
  LoopClock::time_point write_deadline{};  // the queued answers must make progress by then

 private:
  int fd_;
  std::uint64_t id_;
  std::string input_;
  std::size_t input_start_ = 0;
  std::deque<std::string> output_;
  std::size_t output_offset_ = 0;  // into output_.front()
  std::size_t output_bytes_ = 0;
};

}  // namespace glide::server
