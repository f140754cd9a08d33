// A served model is reloaded again and again: each reload builds a model's inference LSH tables,
// queries them from several threads and drops the old ones. The memory of a dropped table set
// must go back to the system, so the process's resident size levels off at about one model's.
// Its own test binary: the resident size of other tests' leftovers would blur the measurement.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/predictor.h"

namespace glide::engine {
namespace {

// AddressSanitizer keeps freed memory in quarantine on purpose, so resident size says nothing
// about release there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

double resident_mb() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

TEST_CASE("building and dropping a model's LSH tables again and again does not grow memory" *
          doctest::skip(kUnderAddressSanitizer)) {
  // Large tables (L=50, 2^15 buckets of 32: ~216 MB) over a small model (~10 MB), read from its
  // file on each reload as the server does: a leaked table set would show at once.
  Config config;
  config.net.num_features = 10000;
  config.net.num_labels = 10000;
  config.net.hidden = {128};
  config.net.lsh.L = 50;
  const std::string path =
      (std::filesystem::temp_directory_path() / ("glide_lsh_memory_" + std::to_string(getpid())))
          .string();
  save_model(path, Network(config.net), config, TrainingState{});
  std::mt19937 rng(3);
  std::vector<std::vector<std::uint32_t>> ids(64);
  std::vector<std::vector<float>> values(64);
  std::vector<data::SparseView> inputs;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (int q = 0; q < 8; ++q) {
      ids[i].push_back(static_cast<std::uint32_t>(rng() % config.net.num_features));
      values[i].push_back(1.0f);
    }
    inputs.push_back({ids[i], values[i]});
  }
  auto cycle = [&] {
    auto model = std::make_shared<const InferenceModel>(path, /*lsh=*/true);
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t)
      clients.emplace_back([&] {
        std::vector<Prediction> out;
        model->predict(inputs, 5, EvalMode::kSampled, out);
        CHECK(out.size() == inputs.size());
      });
    for (auto& c : clients) c.join();
  };
  for (int i = 0; i < 5; ++i) cycle();
  const double after_5 = resident_mb();
  for (int i = 5; i < 50; ++i) cycle();
  const double after_50 = resident_mb();
  INFO("resident MB after 5 cycles: " << after_5 << ", after 50: " << after_50);
  CHECK(after_50 < 1.5 * after_5);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace glide::engine
