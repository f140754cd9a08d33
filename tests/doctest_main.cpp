#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

// GLIDE_TEST_THREADS=N caps oneTBB at N threads for the whole run. scripts/tsan runs the suites
// with 1: the system oneTBB is not instrumented, so ThreadSanitizer cannot see its task hand-offs
// and reports every parallel loop as a race; with one thread the only threads left are the ones
// glide starts itself (serving, background training, rebuilds), whose races are the ones to find.
int main(int argc, char** argv) {
  std::unique_ptr<tbb::global_control> cap;
  if (const char* env = std::getenv("GLIDE_TEST_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || n < 1) {
      std::fprintf(stderr, "GLIDE_TEST_THREADS: '%s' is not a positive number of threads\n", env);
      return 2;
    }
    cap = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                static_cast<std::size_t>(n));
  }
  doctest::Context context(argc, argv);
  return context.run();
}
