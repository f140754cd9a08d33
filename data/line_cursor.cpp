#include "data/line_cursor.h"

#include <charconv>
#include <cmath>

namespace glide::data {

std::size_t LineCursor::skip_spaces() {
  const std::size_t start = pos_;
  while (pos_ < line_.size() && is_space(line_[pos_])) ++pos_;
  return pos_ - start;
}

std::string LineCursor::describe_token(std::size_t pos, bool stop_at_punct) const {
  std::size_t end = pos;
  while (end < line_.size() && !is_space(line_[end]) &&
         !(stop_at_punct && end > pos && (line_[end] == ',' || line_[end] == ':')))
    ++end;
  // Nothing before whitespace or the end: name what is there instead.
  if (end == pos)
    return pos >= line_.size() ? "end of line" : line_[pos] == '\t' ? "a tab" : "a space";
  std::string out = "'";
  const std::size_t shown = std::min<std::size_t>(end - pos, 40);
  for (std::size_t i = pos; i < pos + shown; ++i) {
    const unsigned char c = static_cast<unsigned char>(line_[i]);
    if (c >= 32 && c < 127) {
      out += static_cast<char>(c);
    } else {
      // Control and non-ASCII bytes are shown escaped so the message stays one readable line.
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (shown < end - pos) out += "...";
  return out + "'";
}

void LineCursor::fail_at(std::size_t pos, const std::string& what) const {
  throw LineError{pos + 1, "expected " + what + ", got " + describe_token(pos, true)};
}

void LineCursor::fail_here(const std::string& what) const {
  fail_at(pos_, what);
}

std::uint32_t LineCursor::parse_id(const char* what, std::uint64_t limit, const char* limit_note) {
  const std::size_t start = pos_;
  const char* first = line_.data() + pos_;
  const char* last = line_.data() + line_.size();
  if (first == last || *first < '0' || *first > '9') fail_here(what);
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && value >= limit)) {
    fail_at(start, std::string(what).substr(0, std::string(what).find(" (")) + " below " +
                       std::to_string(limit) + " (" + limit_note + ")");
  }
  if (ec != std::errc()) fail_here(what);
  pos_ += static_cast<std::size_t>(ptr - first);
  return static_cast<std::uint32_t>(value);
}

float LineCursor::parse_value(const char* what) {
  std::size_t end = pos_;
  while (end < line_.size() && !is_space(line_[end])) ++end;
  const char* first = line_.data() + pos_;
  // from_chars does not take a leading '+', which some writers emit.
  if (first < line_.data() + end && *first == '+') ++first;
  float value = 0;
  const auto [ptr, ec] = std::from_chars(first, line_.data() + end, value);
  if (ec != std::errc() || ptr != line_.data() + end || !std::isfinite(value)) fail_here(what);
  pos_ = end;
  return value;
}

void LineCursor::expect(char c, const char* what) {
  if (at_end() || line_[pos_] != c) fail_here(what);
  ++pos_;
}

std::string position_message(const std::string& name, std::uint64_t line, std::size_t column,
                             const std::string& message) {
  return name + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

}  // namespace glide::data
