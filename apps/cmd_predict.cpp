#include "apps/commands.h"
#include "common/error.h"

namespace glide::cli {
int cmd_predict(int, char**) {
  fail("not implemented yet");
}
}  // namespace glide::cli
