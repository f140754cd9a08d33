#include "server/connection_loop.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "server/worker_pool.h"

namespace glide::server {

namespace {

constexpr std::uint64_t kListenTag = 0, kWakeTag = 1;
// Read no more from a connection while this much of its input waits to be parsed (it sent
// requests ahead of their answers), and parse no further request while this much of its answers
// waits for it to read them.
constexpr std::size_t kMaxUnparsed = 64 * 1024;
constexpr std::size_t kMaxQueuedOutput = 256 * 1024;
// After the last answer, how long a closing connection reads (and drops) what the client still
// sends: closing with unread input would reset the connection and could lose the answer.
constexpr auto kLinger = std::chrono::seconds(2);
// How long accepting pauses when the process has no descriptor left.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

LoopClock::duration duration_of(double seconds) {
  return std::chrono::duration_cast<LoopClock::duration>(
      std::chrono::duration<double>(std::max(0.0, seconds)));
}

std::string seconds_text(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

}  // namespace

ConnectionLoop::ConnectionLoop(LoopOptions options, LoopCallbacks callbacks)
    : options_(std::move(options)), callbacks_(std::move(callbacks)) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) fail("epoll_create1", std::strerror(errno));
  wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_ < 0) fail("eventfd", std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev) != 0) fail("epoll_ctl", std::strerror(errno));
}

ConnectionLoop::~ConnectionLoop() {
  workers_.reset();
  connections_.clear();
  if (listen_ >= 0) ::close(listen_);
  if (wake_ >= 0) ::close(wake_);
  if (epoll_ >= 0) ::close(epoll_);
}

int ConnectionLoop::listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints,
                    &found) != 0)
    return -1;
  for (addrinfo* a = found; a && listen_ < 0; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // A wide backlog: a burst of clients connecting at once waits there instead of being dropped.
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0)
      listen_ = fd;
    else
      ::close(fd);
  }
  ::freeaddrinfo(found);
  if (listen_ < 0) return -1;
  sockaddr_storage bound{};
  socklen_t size = sizeof bound;
  ::getsockname(listen_, reinterpret_cast<sockaddr*>(&bound), &size);
  return bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

void ConnectionLoop::stop() {
  stop_requested_ = true;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(wake_, &one, sizeof one);
}

void ConnectionLoop::run() {
  workers_ = std::make_unique<WorkerPool>(options_.worker_threads);
  set_accepting(true);
  epoll_event events[128];
  for (;;) {
    if (stop_requested_ && !draining_) begin_drain();
    if (draining_ && connections_.empty()) break;
    const int n = ::epoll_wait(epoll_, events, 128, wait_milliseconds());
    if (n < 0 && errno != EINTR) fail("epoll_wait", std::strerror(errno));
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        accept_all();
      } else if (tag == kWakeTag) {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto got = ::read(wake_, &count, sizeof count);
        take_completions();
      } else if (const auto it = connections_.find(tag); it != connections_.end()) {
        on_event(*it->second, events[i].events);
      }
    }
    if (LoopClock::now() >= next_check_) check_deadlines();
    reap();
  }
  // Requests whose client went away may still be running: wait for them (their answers are
  // dropped) so that nothing runs a route once run() has returned.
  workers_.reset();
}

int ConnectionLoop::wait_milliseconds() const {
  if (next_check_ == LoopClock::time_point::max()) return -1;
  const auto left = next_check_ - LoopClock::now();
  if (left <= LoopClock::duration::zero()) return 0;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count() + 1;
  return static_cast<int>(std::min<std::int64_t>(ms, 60000));
}

void ConnectionLoop::set_accepting(bool on) {
  if (listen_ < 0 || on == accepting_) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epoll_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listen_, &ev);
  accepting_ = on;
}

void ConnectionLoop::accept_all() {
  while (connections_.size() < options_.max_connections) {
    const int fd = ::accept4(listen_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The connection stays in the backlog; try again shortly rather than spin on it.
        set_accepting(false);
        accept_paused_until_ = LoopClock::now() + kAcceptPause;
        next_check_ = std::min(next_check_, accept_paused_until_);
      }
      return;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const std::uint64_t id = next_id_++;
    auto c = std::make_unique<Connection>(fd, id, options_.limits);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) continue;  // c closes the socket
    c->events = EPOLLIN;
    // The first request's headers are due within the header deadline of connecting.
    set_read_deadline(*c, LoopClock::now() + duration_of(options_.header_timeout_seconds));
    connections_.emplace(id, std::move(c));
    ++open_;
  }
  set_accepting(false);  // at the cap: new connections wait in the backlog until one closes
}

void ConnectionLoop::on_event(Connection& c, std::uint32_t events) {
  if (events & EPOLLERR) return close_later(c);
  if (events & EPOLLHUP) return close_later(c);  // gone both ways: no answer can reach it
  if (events & EPOLLIN) {
    switch (c.read_some()) {
      case Connection::ReadResult::kFailed:
        return close_later(c);
      case Connection::ReadResult::kEndOfStream:
        c.peer_closed = true;
        if (c.phase == Connection::Phase::kLingering) return close_later(c);
        break;
      default:
        break;
    }
  }
  if ((events & EPOLLOUT) && !flush(c)) return;
  process(c);
  update_events(c);
}

void ConnectionLoop::process(Connection& c) {
  if (c.closed || c.phase != Connection::Phase::kReading) return;
  const auto now = LoopClock::now();
  if (c.output_bytes() > kMaxQueuedOutput) return;  // let the client read its answers first
  const HttpParser::State before = c.parser.state();
  const HttpParser::State state = c.unparsed_bytes() > 0 ? c.parse() : before;
  count_receiving(c);
  using State = HttpParser::State;
  if (before == State::kIdle && state != State::kIdle) {
    c.request_start = now;
    set_read_deadline(c, now + duration_of(options_.header_timeout_seconds));
  }
  if (state == State::kBody && before != State::kBody) {
    set_read_deadline(c, now + duration_of(options_.body_timeout_seconds));
    if (c.parser.partial().expects_continue && !c.continue_sent) {
      c.continue_sent = true;
      c.queue_output("HTTP/1.1 100 Continue\r\n\r\n");
      if (!flush(c)) return;
    }
  }
  if (state == State::kComplete) {
    dispatch(c, c.parser.take());
    return count_receiving(c);
  }
  if (state == State::kError) return refuse(c, c.parser.error_status(), c.parser.error_message());
  if (!c.peer_closed) return;  // more bytes to come
  // The client shut its side: nothing more will arrive. A request it left half sent is dropped.
  if (state != State::kIdle || c.output_bytes() == 0) return close_later(c);
  c.phase = Connection::Phase::kClosing;
}

void ConnectionLoop::dispatch(Connection& c, HttpRequest request) {
  c.phase = Connection::Phase::kInFlight;
  c.head_only = request.method == "HEAD";
  c.keep_alive = request.keep_alive;
  c.minor_version = request.minor_version;
  c.continue_sent = false;
  c.read_deadline = LoopClock::time_point::max();  // no deadline while the server works
  workers_->submit([this, id = c.id(), request = std::move(request), start = LoopClock::now()] {
    HttpResponse response;
    try {
      response = callbacks_.handle(request);
    } catch (const std::exception& e) {
      response = callbacks_.error(500, e.what());
    } catch (...) {
      response = callbacks_.error(500, "internal error");
    }
    callbacks_.answered(request, response.status,
                        std::chrono::duration<double>(LoopClock::now() - start).count());
    {
      std::lock_guard lock(completions_mutex_);
      completions_.push_back({id, std::move(response)});
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_, &one, sizeof one);
  });
}

void ConnectionLoop::take_completions() {
  std::vector<Completion> done;
  {
    std::lock_guard lock(completions_mutex_);
    done.swap(completions_);
  }
  for (auto& [id, response] : done) {
    const auto it = connections_.find(id);
    if (it == connections_.end() || it->second->closed) continue;  // the client went away
    Connection& c = *it->second;
    // A client that shut its side after sending still gets the answers to what it sent.
    const bool close = !c.keep_alive || draining_ || (c.peer_closed && c.unparsed_bytes() == 0);
    if (!close) {
      c.phase = Connection::Phase::kReading;
      set_read_deadline(c, LoopClock::now() + duration_of(options_.keep_alive_seconds));
    }
    send_answer(c, std::move(response), close);
    process(c);  // a pipelined request may be waiting already
    update_events(c);
  }
}

void ConnectionLoop::send_answer(Connection& c, HttpResponse response, bool close) {
  if (c.output_bytes() == 0)
    c.write_deadline = LoopClock::now() + duration_of(options_.body_timeout_seconds);
  c.queue_output(response_head(response, close, !close && c.minor_version == 0));
  if (!c.head_only) c.queue_output(std::move(response.body));
  if (close) {
    c.phase = Connection::Phase::kClosing;
    c.read_deadline = LoopClock::time_point::max();
  }
  next_check_ = std::min(next_check_, c.write_deadline);
  flush(c);
}

void ConnectionLoop::refuse(Connection& c, int status, const std::string& message) {
  const HttpRequest& partial = c.parser.partial();
  const double seconds =
      c.parser.state() == HttpParser::State::kIdle
          ? 0
          : std::chrono::duration<double>(LoopClock::now() - c.request_start).count();
  callbacks_.answered(partial, status, seconds);
  c.head_only = partial.method == "HEAD";
  c.minor_version = partial.minor_version;
  // A body refused (413, 408) is no longer being received: released before the answer can
  // reach the client, so that nobody who has the answer still sees it counted.
  receiving_bytes_.store(receiving_bytes_.load() - c.receiving);
  c.receiving = 0;
  if (c.id() == budget_leader_) budget_leader_ = 0;
  send_answer(c, callbacks_.error(status, message), true);
  count_receiving(c);
}

bool ConnectionLoop::flush(Connection& c) {
  const std::size_t before = c.output_bytes();
  if (!c.flush()) {
    close_later(c);
    return false;
  }
  const auto now = LoopClock::now();
  if (c.output_bytes() > 0) {
    if (c.output_bytes() < before) {  // progress: the client reads
      c.write_deadline = now + duration_of(options_.body_timeout_seconds);
      next_check_ = std::min(next_check_, c.write_deadline);
    }
    return true;
  }
  if (c.phase == Connection::Phase::kClosing) {
    if (c.peer_closed) {
      close_later(c);
      return false;
    }
    c.shutdown_write();
    c.phase = Connection::Phase::kLingering;
    set_read_deadline(c, now + kLinger);
  } else if (c.phase == Connection::Phase::kReading &&
             c.parser.state() == HttpParser::State::kIdle && before > 0) {
    // The answer is out: the idle time between requests starts now.
    set_read_deadline(c, now + duration_of(options_.keep_alive_seconds));
  }
  return true;
}

void ConnectionLoop::update_events(Connection& c) {
  if (c.closed) return;
  std::uint32_t want = 0;
  // Over the receiving budget, one connection (the first to find it spent) goes on reading its
  // body, so that one always finishes; the others wait for the budget or their deadline.
  bool over_budget = false;
  if (c.phase == Connection::Phase::kReading && c.parser.state() == HttpParser::State::kBody &&
      receiving_budget_spent()) {
    if (budget_leader_ == 0) budget_leader_ = c.id();
    over_budget = budget_leader_ != c.id();
  }
  if (over_budget && !c.waiting_for_budget) {
    c.waiting_for_budget = true;
    waiting_for_budget_.push_back(c.id());
  }
  if ((c.phase == Connection::Phase::kReading && !c.peer_closed &&
       c.unparsed_bytes() < kMaxUnparsed && !over_budget) ||
      (c.phase == Connection::Phase::kLingering && !c.peer_closed))
    want |= EPOLLIN;
  if (c.output_bytes() > 0) want |= EPOLLOUT;
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id();
  if (::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd(), &ev) != 0) return close_later(c);
  c.events = want;
}

void ConnectionLoop::set_read_deadline(Connection& c, LoopClock::time_point when) {
  c.read_deadline = when;
  next_check_ = std::min(next_check_, when);
}

void ConnectionLoop::count_receiving(Connection& c) {
  const bool receiving = !c.closed && c.phase == Connection::Phase::kReading &&
                         c.parser.state() == HttpParser::State::kBody;
  const std::size_t now = receiving ? c.parser.partial().body.size() : 0;
  receiving_bytes_.store(receiving_bytes_.load() - c.receiving + now);
  c.receiving = now;
  if (now == 0 && c.id() == budget_leader_) budget_leader_ = 0;
}

bool ConnectionLoop::receiving_budget_spent() const {
  return receiving_bytes_ >= std::max(options_.max_receiving_bytes, options_.limits.max_body_bytes);
}

void ConnectionLoop::check_deadlines() {
  const auto now = LoopClock::now();
  next_check_ = LoopClock::time_point::max();
  if (!accepting_ && !draining_ && listen_ >= 0 && connections_.size() < options_.max_connections) {
    if (now >= accept_paused_until_)
      set_accepting(true);
    else
      next_check_ = accept_paused_until_;
  }
  using State = HttpParser::State;
  for (auto& [id, owned] : connections_) {
    Connection& c = *owned;
    if (c.closed) continue;
    const bool writing = c.output_bytes() > 0;
    if (writing && now >= c.write_deadline) {  // the client takes no answer
      close_later(c);
      continue;
    }
    // An idle connection's time starts once its last answer is out.
    const bool idle = c.phase == Connection::Phase::kReading && c.parser.state() == State::kIdle;
    const bool reading = (c.phase == Connection::Phase::kReading && !(idle && writing)) ||
                         c.phase == Connection::Phase::kLingering;
    if (reading && now >= c.read_deadline) {
      if (idle || c.phase == Connection::Phase::kLingering) {
        close_later(c);
        continue;
      }
      const bool body = c.parser.state() == State::kBody;
      refuse(
          c, 408,
          std::string("the request's ") + (body ? "body" : "headers") + " did not arrive within " +
              seconds_text(body ? options_.body_timeout_seconds : options_.header_timeout_seconds) +
              " s");
      if (c.closed) continue;
    }
    if (c.output_bytes() > 0) next_check_ = std::min(next_check_, c.write_deadline);
    if (c.phase == Connection::Phase::kLingering ||
        (c.phase == Connection::Phase::kReading && !(idle && c.output_bytes() > 0)))
      next_check_ = std::min(next_check_, c.read_deadline);
    update_events(c);
  }
}

void ConnectionLoop::begin_drain() {
  draining_ = true;
  set_accepting(false);
  if (listen_ >= 0) ::close(listen_);  // new connections are refused from now on
  listen_ = -1;
  const auto now = LoopClock::now();
  for (auto& [id, owned] : connections_) {
    Connection& c = *owned;
    if (c.closed || c.phase != Connection::Phase::kReading) continue;
    if (c.parser.state() == HttpParser::State::kIdle && c.unparsed_bytes() == 0) {
      if (c.output_bytes() == 0) {
        close_later(c);
        continue;
      }
      c.phase = Connection::Phase::kClosing;
    } else {
      // A request still arriving gets at most the keep-alive time to finish.
      set_read_deadline(c,
                        std::min(c.read_deadline, now + duration_of(options_.keep_alive_seconds)));
    }
    update_events(c);
  }
}

void ConnectionLoop::close_later(Connection& c) {
  if (c.closed) return;
  c.closed = true;
  count_receiving(c);
  doomed_.push_back(c.id());
}

void ConnectionLoop::reap() {
  for (const std::uint64_t id : doomed_) {
    if (connections_.erase(id) > 0) --open_;  // closing the socket also leaves the epoll set
  }
  doomed_.clear();
  // Connections left unread while the receiving budget was spent: read them again once it is
  // not, or once the connection reading past it is done.
  if (!waiting_for_budget_.empty() && (!receiving_budget_spent() || budget_leader_ == 0)) {
    std::vector<std::uint64_t> waiting;
    waiting.swap(waiting_for_budget_);
    for (const std::uint64_t id : waiting)
      if (const auto it = connections_.find(id); it != connections_.end()) {
        it->second->waiting_for_budget = false;
        update_events(*it->second);
      }
  }
  if (!accepting_ && !draining_ && connections_.size() < options_.max_connections &&
      LoopClock::now() >= accept_paused_until_)
    set_accepting(true);
}

}  // namespace glide::server
