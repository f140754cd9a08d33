#include "apps/commands.h"
#include "common/error.h"

namespace glide::cli {
int bench_data(int, char**) { fail("not implemented yet"); }
}  // namespace glide::cli
