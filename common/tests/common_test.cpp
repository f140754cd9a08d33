#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "common/aligned.h"
#include "common/cpu.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/rng.h"

using namespace glide;

TEST_CASE("aligned arrays are 64-byte aligned and zeroed") {
  AlignedArray<float> a(1000);
  CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 64 == 0);
  for (float x : a) CHECK(x == 0.0f);
  AlignedArray<float> big(std::size_t{3} << 20);
  CHECK(reinterpret_cast<std::uintptr_t>(big.data()) % (2u << 20) == 0);
  big[12345] = 3.0f;
  AlignedArray<float> copy = big;
  CHECK(copy[12345] == 3.0f);
}

TEST_CASE("rng is deterministic and uniform enough") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) CHECK(a.next() == b.next());
  CHECK(a.next() != c.next());
  Rng r(7);
  int hist[10] = {};
  for (int i = 0; i < 100000; ++i) hist[r.below(10)]++;
  for (int h : hist) CHECK(h == doctest::Approx(10000).epsilon(0.05));
  double sum = 0, sq = 0;
  for (int i = 0; i < 100000; ++i) {
    double x = r.normal();
    sum += x;
    sq += x * x;
  }
  CHECK(sum / 100000 == doctest::Approx(0.0).epsilon(0.02).scale(1));
  CHECK(sq / 100000 == doctest::Approx(1.0).epsilon(0.02));
}

TEST_CASE("set_active_isa never exceeds the cpu") {
  const Isa before = active_isa();
  CHECK(set_active_isa(Isa::kScalar));
  CHECK(active_isa() == Isa::kScalar);
  CHECK(set_active_isa(before));
  if (!cpu_features().avx512) CHECK_FALSE(set_active_isa(Isa::kAvx512));
}

TEST_CASE("atomic write replaces the file or leaves the old one") {
  const auto dir = std::filesystem::temp_directory_path() / "glide_common_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "f.bin").string();
  write_file_atomic(path, [](std::FILE* f) { std::fputs("first", f); });
  auto bytes = read_file_bytes(path);
  CHECK(std::string(bytes.begin(), bytes.end()) == "first");
  CHECK_THROWS_AS(write_file_atomic(path,
                                    [](std::FILE* f) {
                                      std::fputs("partial", f);
                                      throw std::runtime_error("crash mid-write");
                                    }),
                  std::runtime_error);
  bytes = read_file_bytes(path);
  CHECK(std::string(bytes.begin(), bytes.end()) == "first");
  CHECK(std::distance(std::filesystem::directory_iterator(dir), {}) == 1);
  CHECK_THROWS_WITH_AS(read_file_bytes((dir / "missing").string()),
                       doctest::Contains("missing: cannot open"), Error);
  std::filesystem::remove_all(dir);
}
