#include "server/http_connection.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace glide::server {

Connection::Connection(int fd, std::uint64_t id, const HttpLimits& limits)
    : parser(limits), fd_(fd), id_(id) {}

Connection::~Connection() {
  ::close(fd_);
}

Connection::ReadResult Connection::read_some() {
  char buffer[64 * 1024];
  const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n > 0) {
    if (phase != Phase::kLingering) input_.append(buffer, static_cast<std::size_t>(n));
    return ReadResult::kData;
  }
  if (n == 0) return ReadResult::kEndOfStream;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return ReadResult::kNothing;
  return ReadResult::kFailed;
}

HttpParser::State Connection::parse() {
  input_start_ += parser.feed(std::string_view(input_).substr(input_start_));
  // Drop what was parsed once it is all of the input or a good part of it.
  if (input_start_ == input_.size()) {
    input_.clear();
    input_start_ = 0;
  } else if (input_start_ > 64 * 1024) {
    input_.erase(0, input_start_);
    input_start_ = 0;
  }
  return parser.state();
}

void Connection::queue_output(std::string bytes) {
  if (bytes.empty()) return;
  output_bytes_ += bytes.size();
  output_.push_back(std::move(bytes));
}

bool Connection::flush() {
  while (!output_.empty()) {
    iovec parts[16];
    int count = 0;
    for (std::size_t i = 0; i < output_.size() && count < 16; ++i, ++count) {
      const std::string& s = output_[i];
      const std::size_t skip = i == 0 ? output_offset_ : 0;
      parts[count].iov_base = const_cast<char*>(s.data() + skip);
      parts[count].iov_len = s.size() - skip;
    }
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = static_cast<std::size_t>(count);
    // MSG_NOSIGNAL: a client gone away is an error here, not a SIGPIPE for the process.
    const ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    auto sent = static_cast<std::size_t>(n);
    output_bytes_ -= sent;
    while (sent > 0) {
      const std::size_t left = output_.front().size() - output_offset_;
      if (sent < left) {
        output_offset_ += sent;
        break;
      }
      sent -= left;
      output_.pop_front();
      output_offset_ = 0;
    }
  }
  return true;
}

void Connection::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

}  // namespace glide::server
