// The message of the glide::Error `f` throws, or "" when it throws none (anything else it throws
// fails the test): for tests that assert the exact error a bad input gets.
#pragma once
#include <string>

#include "common/error.h"

namespace glide::testing {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Whether `s` holds `part` (for checking parts of error messages).
inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace glide::testing
