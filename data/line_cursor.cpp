#include "data/line_cursor.h"

#include <charconv>
#include <cmath>

namespace glide::data {

namespace {

// Whether the decimal number from_chars matched in [first, last) ("-12.5e-3": sign, digits, an
// optional fraction and exponent) is below 1 in magnitude. from_chars says result_out_of_range
// both for numbers too large for a float and for those too small to be anything but 0; only the
// second have a value, and its exponent is negative.
bool below_one(const char* first, const char* last) {
  if (first < last && *first == '-') ++first;
  // The power of ten of the first nonzero digit: digits before the point count up, after it down.
  std::int64_t int_digits = 0, fraction_digits = 0;
  std::int64_t first_nonzero_int = -1, first_nonzero_fraction = -1;
  bool in_fraction = false;
  for (; first < last && *first != 'e' && *first != 'E'; ++first) {
    if (*first == '.') {
      in_fraction = true;
      continue;
    }
    std::int64_t& count = in_fraction ? fraction_digits : int_digits;
    ++count;
    if (*first != '0' && first_nonzero_int < 0 && first_nonzero_fraction < 0)
      (in_fraction ? first_nonzero_fraction : first_nonzero_int) = count;
  }
  std::int64_t power;
  if (first_nonzero_int > 0)
    power = int_digits - first_nonzero_int;  // "120": the '1' is 10^2
  else if (first_nonzero_fraction > 0)
    power = -first_nonzero_fraction;  // "0.05": the '5' is 10^-2
  else
    return true;  // all zeros
  std::int64_t exponent = 0;
  bool negative = false;
  if (first < last) {
    ++first;  // 'e'
    if (first < last && (*first == '-' || *first == '+')) negative = *first++ == '-';
    // Saturated: past a million only the sign matters.
    for (; first < last && exponent < 1000000; ++first) exponent = exponent * 10 + (*first - '0');
  }
  return power + (negative ? -exponent : exponent) < 0;
}

}  // namespace

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
  auto [ptr, ec] = std::from_chars(first, line_.data() + end, value);
  // Too small for a float (1e-46): the nearest float, 0. Too large stays an error.
  if (ec == std::errc::result_out_of_range && below_one(first, ptr)) {
    value = 0;
    ec = std::errc();
  }
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
