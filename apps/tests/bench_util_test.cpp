// The benchmarks' shared helper: the percentile definition against values computed by hand, and
// comma lists whose errors name the flag and the bad item.
#include "apps/bench_util.h"

#include <doctest/doctest.h>
#include "tests/error_of.h"

#include <string>
#include <vector>

using namespace glide;
using namespace glide::cli;

namespace {

using glide::testing::error_of;

}  // namespace

TEST_CASE("percentile interpolates linearly between the closest ranks") {
  // Sorted 1, 2, 3, 4 sit at q = 0, 1/3, 2/3, 1.
  const std::vector<double> four{4, 1, 3, 2};
  CHECK(percentile(four, 0.0) == 1.0);
  CHECK(percentile(four, 1.0) == 4.0);
  CHECK(percentile(four, 0.5) == doctest::Approx(2.5));    // h = 1.5
  CHECK(percentile(four, 0.25) == doctest::Approx(1.75));  // h = 0.75
  CHECK(percentile(four, 0.99) == doctest::Approx(3.97));  // h = 2.97
  // Odd count: the median is the middle value; p90 of 0, 5, 10 is at h = 1.8.
  CHECK(percentile({10, 0, 5}, 0.5) == 5.0);
  CHECK(percentile({10, 0, 5}, 0.9) == doctest::Approx(9.0));
  // 0..100: the q-quantile is 100 q exactly.
  std::vector<double> hundred;
  for (int i = 100; i >= 0; --i) hundred.push_back(i);
  CHECK(percentile(hundred, 0.99) == doctest::Approx(99.0));
  CHECK(percentile(hundred, 0.5) == doctest::Approx(50.0));
  CHECK(percentile({7}, 0.99) == 7.0);
  CHECK(percentile({}, 0.5) == 0.0);
  // q outside [0, 1] is clamped to it.
  CHECK(percentile(four, 1.5) == 4.0);
  CHECK(percentile(four, -1) == 1.0);
}

TEST_CASE("comma lists split into their items; empty lists and items name the flag") {
  CHECK(split_list("1,8,64", "concurrency") == std::vector<std::string>{"1", "8", "64"});
  CHECK(split_list("lsh", "variants") == std::vector<std::string>{"lsh"});
  CHECK(error_of([] { split_list("", "skews"); }) ==
        "--skews: needs a comma list, got an empty one");
  CHECK(error_of([] { split_list("1,,8", "concurrency"); }) ==
        "--concurrency: empty item in '1,,8'");
  CHECK(error_of([] { split_list("1,8,", "concurrency"); }) ==
        "--concurrency: empty item in '1,8,'");
  CHECK(error_of([] { split_list(",1", "concurrency"); }) == "--concurrency: empty item in ',1'");
}

TEST_CASE("typed lists name the flag, the bad item and why") {
  auto counts = [](const std::string& s) {
    return parse_list(s, "concurrency",
                      [](const std::string& x) { return parse_integer(x, 1, 1000); });
  };
  CHECK(counts("1,8,64") == std::vector<std::uint64_t>{1, 8, 64});
  CHECK(error_of([&] { counts("1,8x,64"); }) ==
        "--concurrency: bad item '8x' in '1,8x,64': not a whole number");
  CHECK(error_of([&] { counts("0"); }) ==
        "--concurrency: bad item '0' in '0': out of range 1..1000");
  CHECK(error_of([&] { counts("-3"); }) ==
        "--concurrency: bad item '-3' in '-3': not a whole number");

  auto numbers = [](const std::string& s) {
    return parse_list(s, "layer-sparsities",
                      [](const std::string& x) { return parse_number(x, 0, 1); });
  };
  CHECK(numbers("0.05,0.2,1") == std::vector<double>{0.05, 0.2, 1});
  CHECK(error_of([&] { numbers("0.05,abc"); }) ==
        "--layer-sparsities: bad item 'abc' in '0.05,abc': not a number");
  CHECK(error_of([&] { numbers("0.5x"); }).find("bad item '0.5x'") != std::string::npos);
  CHECK(error_of([&] { numbers("2"); }) ==
        "--layer-sparsities: bad item '2' in '2': out of range [0, 1]");

  auto modes = [](const std::string& s) {
    return parse_list(s, "modes", [](const std::string& x) {
      return parse_choice(x, {"exact", "sampled"});
    });
  };
  CHECK(modes("sampled,exact") == std::vector<std::string>{"sampled", "exact"});
  CHECK(error_of([&] { modes("exact,smapled"); }) ==
        "--modes: bad item 'smapled' in 'exact,smapled': expected one of exact, sampled");
  // An item parser that is another module's (it throws its own glide::Error) is wrapped alike.
  auto layers = [](const std::string& s) {
    return parse_list(s, "variants", [](const std::string& x) {
      engine::parse_sampling(x);
      return x;
    });
  };
  CHECK(layers("lsh,dense") == std::vector<std::string>{"lsh", "dense"});
  CHECK(error_of([&] { layers("lsh,dens"); }) ==
        "--variants: bad item 'dens' in 'lsh,dens': output sampling must be lsh, random or dense, "
        "got 'dens'");
}
