// One exception type for every error glide reports: what went wrong and where.
#pragma once
#include <string>

// glide::Error itself is public API (installed as glide/error.h): one type for library users and
// the engine alike. The message is complete and meant for a user: "FILE:LINE:COL: expected ...".
#include "glide/error.h"

namespace glide {

// Formats "where: message" where `where` is e.g. "train.txt:12:7" or "model.glide".
[[noreturn]] void fail(const std::string& where, const std::string& message);
[[noreturn]] void fail(const std::string& message);

}  // namespace glide
