// One exception type for every error glide reports: what went wrong and where.
#pragma once
#include <stdexcept>
#include <string>

namespace glide {

// Thrown for bad input (malformed data, bad flags, damaged files) and misuse. The message is
// complete and meant for a user: "FILE:LINE:COL: expected ..., got ...".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Formats "where: message" where `where` is e.g. "train.txt:12:7" or "model.glide".
[[noreturn]] void fail(const std::string& where, const std::string& message);
[[noreturn]] void fail(const std::string& message);

}  // namespace glide
