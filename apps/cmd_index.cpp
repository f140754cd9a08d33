// `glide index`: builds a model's output index (engine/output_index.h) from its training data and
// writes the model with it, so that sampled inference (`--mode sampled` of eval, predict, serve)
// uses it. `glide train` builds one at the end of training; this is for models trained without
// one (or to rebuild it with other settings).
#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <cxxopts.hpp>

#include "apps/commands.h"
#include "apps/config_flags.h"
#include "cache/cache_file.h"
#include "common/error.h"
#include "common/file_util.h"
#include "data/dataset_io.h"
#include "engine/checkpoint.h"
#include "engine/output_index.h"

namespace glide::cli {

int cmd_index(int argc, char** argv) {
  cxxopts::Options o("glide index",
                     "Build a model's output index from its training data (sampled inference "
                     "scores only the labels the index proposes) and write the model with it.");
  o.add_options()("model", "model file (.glide)", cxxopts::value<std::string>())(
      "train", "the model's training data (.gds, XC text, libsvm; .zst ok)",
      cxxopts::value<std::string>())(
      "o,output", "model file to write (may be --model: the file is replaced atomically)",
      cxxopts::value<std::string>())("clusters",
                                     "clusters of training points (0: one per 8 points)",
                                     cxxopts::value<std::uint32_t>()->default_value("0"))(
      "predicted", "exact top labels of each (sampled) training point added to its cluster",
      cxxopts::value<std::uint32_t>()->default_value("0"))(
      "threads", "worker threads (0: all cores)", cxxopts::value<unsigned>()->default_value("0"))(
      "h,help", "this help");
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  if (!r.count("model")) fail("--model FILE is required");
  if (!r.count("train")) fail("--train FILE is required");
  if (!r.count("output")) fail("-o FILE is required");
  const std::string in = r["model"].as<std::string>(), out = r["output"].as<std::string>();
  check_writable(out, "-o");
  const unsigned threads = r["threads"].as<unsigned>() ? r["threads"].as<unsigned>()
                                                       : std::thread::hardware_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);

  engine::LoadedModel m = engine::load_model(in);
  cache::CacheStates caches = cache::read_caches(in, m.config.net);
  const data::Dataset train = data::read_dataset(r["train"].as<std::string>());
  engine::OutputIndexOptions io;
  io.clusters = r["clusters"].as<std::uint32_t>();
  io.predicted = r["predicted"].as<std::uint32_t>();
  const auto t0 = std::chrono::steady_clock::now();
  const auto index = engine::OutputIndex::build(*m.net, train, io, [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  engine::SaveOptions so;
  so.optimizer_state = m.has_optimizer_state;
  cache::CacheSectionWriter sections;
  so.extra_sections = [&](engine::ModelFileWriter& w) {
    if (!caches.empty()) sections.add(w, caches);
    index->save(w);
  };
  engine::save_model(out, *m.net, m.config, m.state, so);
  std::printf("indexed %s -> %s: %u clusters, %.1f MB, built in %.1f s\n", in.c_str(), out.c_str(),
              index->clusters(), index->bytes() / 1e6, secs);
  return 0;
}

}  // namespace glide::cli
