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

}  // namespace glide::testing
