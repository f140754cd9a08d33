/// @file glide/error.h
/// The one exception type glide throws.
#pragma once
#include <stdexcept>
#include <string>

namespace glide {

/// Thrown for every error glide reports: bad input (malformed data, wrong dimensions, bad
/// offsets), bad configuration values, unreadable or damaged files, and API misuse (using an
/// empty Model, k = 0, ...). what() is complete and meant for a user, e.g.
/// "train.txt:12:7: expected ..., got ..." or "input 3: feature id 900 is out of range (the
/// model has 500 features)".
///
/// glide never calls exit() or abort() on bad input: it throws this type. Other standard
/// exceptions can still escape in exceptional conditions (std::bad_alloc when memory runs out).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace glide
