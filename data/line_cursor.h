// Scans one line of text with its column known, so parse errors can point at the exact byte.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace glide::data {

// A parse error inside one line: the column (1-based, in bytes) and "expected ..., got '...'".
// Readers add the file name and line number and either rethrow it as glide::Error or count it.
struct LineError {
  std::size_t column;
  std::string message;
};

class LineCursor {
 public:
  explicit LineCursor(std::string_view line) : line_(line) {}

  bool at_end() const { return pos_ >= line_.size(); }
  char peek() const { return line_[pos_]; }
  std::size_t pos() const { return pos_; }
  std::size_t column() const { return pos_ + 1; }
  void advance(std::size_t n = 1) { pos_ += n; }
  static bool is_space(char c) { return c == ' ' || c == '\t'; }
  // Skips spaces and tabs; returns how many were skipped.
  std::size_t skip_spaces();

  // Non-negative decimal integer below `limit`. `what` names the item for errors, e.g.
  // "a label id (non-negative integer)". `limit_note` explains where the limit comes from.
  std::uint32_t parse_id(const char* what, std::uint64_t limit, const char* limit_note);
  // A finite float ending at a space, tab or the end of the line.
  float parse_value(const char* what);
  // Consumes `c` or fails with "expected `what`".
  void expect(char c, const char* what);

  // Throws LineError at the current position: "expected <what>, got '<token here>'".
  [[noreturn]] void fail_here(const std::string& what) const;
  [[noreturn]] void fail_at(std::size_t pos, const std::string& what) const;

  // The token starting at `pos` (up to whitespace, ',' or ':' when `stop_at_punct`), quoted and
  // shortened for messages; "end of line" when there is none.
  std::string describe_token(std::size_t pos, bool stop_at_punct = false) const;

 private:
  std::string_view line_;
  std::size_t pos_ = 0;
};

// Removes a trailing '\r' (CRLF files are accepted everywhere).
inline std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// "FILE:LINE:COL: message"
std::string position_message(const std::string& name, std::uint64_t line, std::size_t column,
                             const std::string& message);

}  // namespace glide::data
