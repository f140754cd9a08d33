#include "common/error.h"

namespace glide {

void fail(const std::string& where, const std::string& message) {
  throw Error(where.empty() ? message : where + ": " + message);
}

void fail(const std::string& message) {
  throw Error(message);
}

}  // namespace glide
