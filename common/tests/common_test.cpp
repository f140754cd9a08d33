#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/aligned.h"
#include "common/cpu.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/simd_dispatch.h"

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
  // Small and large arrays (large ones of sizes off the 2 MB pages), allocated again where one
  // was just filled and freed: still aligned, every element zero, the last one writable.
  for (const std::size_t n : {std::size_t{200}, std::size_t{1250001}, std::size_t{3} << 20,
                              std::size_t{1250001}, std::size_t{200}}) {
    CAPTURE(n);
    {
      AlignedArray<float> dirty(n);
      std::fill(dirty.begin(), dirty.end(), 7.0f);
    }
    AlignedArray<float> fresh(n);
    const std::uintptr_t align = n * sizeof(float) >= (4u << 20) ? (2u << 20) : 64;
    CHECK(reinterpret_cast<std::uintptr_t>(fresh.data()) % align == 0);
    CHECK(std::all_of(fresh.begin(), fresh.end(), [](float x) { return x == 0.0f; }));
    fresh[n - 1] = 1.0f;
    AlignedArray<float> moved = std::move(fresh);
    CHECK(moved[n - 1] == 1.0f);
    CHECK(fresh.empty());
  }
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

TEST_CASE("SIMD levels: ordered, named both ways, supported up to the best one") {
  for (Isa isa : kAllIsas) {
    CHECK(parse_isa(isa_name(isa)) == isa);
    CHECK(isa_supported(isa) == (isa <= best_isa()));
  }
  CHECK(!parse_isa("avx1024"));
  CHECK(!parse_isa(""));
  const CpuFeatures& f = cpu_features();
  CHECK(isa_supported(Isa::kAvx2) == f.avx2);
  CHECK(isa_supported(Isa::kAvx512) == (f.avx2 && f.avx512));
  if (isa_supported(Isa::kAvx512Vnni)) CHECK(f.avx512_vnni);
  if (isa_supported(Isa::kAvx512Bf16)) CHECK((f.avx512_vnni && f.avx512_bf16));
  if (isa_supported(Isa::kAmx)) CHECK(f.amx);
  CHECK(active_isa() <= best_isa());
}

namespace {
struct FakeTable {
  int id;
};
const FakeTable kScalarTable{0}, kAvx2Table{2}, kVnniTable{3};
}  // namespace

TEST_CASE("a kernel dispatch falls back to the best lower level that has a table") {
  const Isa before = active_isa();
  // Tables at scalar, avx2 and avx512-vnni; amx's source declines (as AMX without the tile state).
  const KernelDispatch<FakeTable> d{
      {Isa::kScalar, [] { return &kScalarTable; }},
      {Isa::kAvx2, [] { return &kAvx2Table; }},
      {Isa::kAvx512Vnni, [] { return &kVnniTable; }},
      {Isa::kAmx, []() -> const FakeTable* { return nullptr; }},
  };
  auto best_up_to = [](Isa isa) {
    const Isa l = isa < best_isa() ? isa : best_isa();  // a level the CPU lacks: its best
    if (l >= Isa::kAvx512Vnni) return 3;
    return l >= Isa::kAvx2 ? 2 : 0;
  };
  for (Isa isa : kAllIsas) {
    CAPTURE(isa_name(isa));
    CHECK(d.at(isa).id == best_up_to(isa));
    if (set_active_isa(isa)) CHECK(d.active().id == best_up_to(isa));
  }
  set_active_isa(before);
  CHECK(&d.scalar() == &kScalarTable);
  // runnable(): each distinct table once, with the lowest level using it.
  const auto r = d.runnable();
  REQUIRE(!r.empty());
  CHECK(r[0].first == Isa::kScalar);
  CHECK(r.size() == std::size_t{1} + isa_supported(Isa::kAvx2) + isa_supported(Isa::kAvx512Vnni));
  if (isa_supported(Isa::kAvx512Vnni)) CHECK(r.back().first == Isa::kAvx512Vnni);
  // A family without a scalar table is a programming error.
  CHECK_THROWS_AS(KernelDispatch<FakeTable>({{Isa::kAvx2, [] { return &kAvx2Table; }}}),
                  std::logic_error);
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

TEST_CASE("an atomic write removes the temporary files of dead processes beside its target") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("glide_common_stale_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.glide").string();
  // No process can have an id above pid_max.
  long pid_max = 0;
  if (std::FILE* f = std::fopen("/proc/sys/kernel/pid_max", "r")) {
    if (std::fscanf(f, "%ld", &pid_max) != 1) pid_max = 0;
    std::fclose(f);
  }
  REQUIRE(pid_max > 0);
  const std::string dead = std::to_string(pid_max + 1);
  const std::string live = std::to_string(::getppid());  // the process that runs this test
  const std::vector<std::string> stale = {"m.glide.tmp." + dead, "m.glide.tmp.check." + dead};
  const std::vector<std::string> kept = {
      "m.glide.tmp." + live,         // a running process may be writing it now
      "m.glide.tmp.check." + live,   //
      "m.glide.tmp.abc",             // not a name the writer makes
      "m.glide.tmp." + dead + ".x",  //
      "m.glide.tmp.0",               //
      "other.glide.tmp." + dead,     // another target's
      "m.glide.tmp." + dead + "0000000000"};
  for (const auto& name : stale) std::fclose(std::fopen((dir / name).string().c_str(), "w"));
  for (const auto& name : kept) std::fclose(std::fopen((dir / name).string().c_str(), "w"));
  write_file_atomic(path, [](std::FILE* f) { std::fputs("model", f); });
  const auto bytes = read_file_bytes(path);
  CHECK(std::string(bytes.begin(), bytes.end()) == "model");
  for (const auto& name : stale) CHECK_MESSAGE(!std::filesystem::exists(dir / name), name);
  for (const auto& name : kept) CHECK_MESSAGE(std::filesystem::exists(dir / name), name);
  // This process's own temporary file is kept (it may be writing it on another thread).
  const std::string own = "m.glide.tmp." + std::to_string(::getpid());
  std::fclose(std::fopen((dir / own).string().c_str(), "w"));
  std::fclose(std::fopen((dir / stale[0]).string().c_str(), "w"));
  remove_stale_temporaries(path);
  CHECK(std::filesystem::exists(dir / own));
  CHECK(!std::filesystem::exists(dir / stale[0]));
  // A target in the current folder (no '/' in its name) is cleaned the same way.
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  std::fclose(std::fopen(("n.bin.tmp." + dead).c_str(), "w"));
  write_file_atomic("n.bin", [](std::FILE* f) { std::fputs("n", f); });
  CHECK(!std::filesystem::exists(dir / ("n.bin.tmp." + dead)));
  std::filesystem::current_path(cwd);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a progress line's rate and ETA count this run's work only; a stopped run says where") {
  // Fresh: 600 of 1200 in 2 s -> 300/s, 600 left -> ETA 2 s.
  CHECK(progress_line("train", "samples", 1200, 0, 600, 2.0, false) ==
        "train: 600/1200 (50.0%) samples, 300 samples/s, ETA 2s");
  // Resumed at 600: 900 of 1200 after 1 s of this run -> 300/s (not 900/s), ETA 1 s.
  CHECK(progress_line("train", "samples", 1200, 600, 900, 1.0, false) ==
        "train: 900/1200 (75.0%) samples, 300 samples/s, ETA 1s");
  // The final line of a run stopped at 900: 75%, and the time taken.
  CHECK(progress_line("train", "samples", 1200, 600, 900, 3.0, true) ==
        "train: 900/1200 (75.0%) samples, 100 samples/s, 3s");
  // Resumed with nothing left to do: no negative or NaN rate.
  CHECK(progress_line("train", "samples", 1200, 1200, 1200, 0.0, true) ==
        "train: 1200/1200 (100.0%) samples, 0 samples/s, 0s");
}

TEST_CASE("a restarted progress clock leaves out the time before it (a model's setup)") {
  Progress p("train", 100, "samples", /*quiet=*/true);
  usleep(60000);
  const double before = p.elapsed_seconds();
  p.restart();
  const double after = p.elapsed_seconds();
  CHECK(before >= 0.06);
  CHECK(after < before);  // without the restart, never: the clock is monotonic
}
