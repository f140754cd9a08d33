// `glide bench NAME`: benchmarks that print ratios against a baseline measured in the same run.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "apps/commands.h"

namespace glide::cli {

namespace {
struct Bench {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};
const Bench kBenches[] = {
    {"data", bench_data, "parse throughput, .gds load speed-up, generator throughput"},
    {"train", bench_train, "samples/s, time split and P@1: LSH vs random negatives vs dense"},
    {"hidden", bench_hidden,
     "dense vs LSH-sampled hidden layers: samples/s, P@1 at equal samples/time"},
    {"serve", bench_serve, "REST server requests/s, p50/p99, parse vs predict, batching on/off"},
    {"infer", bench_infer,
     "exact fp32/int8 vs LSH tables vs the output index: P@k, recall, latency, throughput"},
    {"quant", bench_quant, "fp32 vs int8 output layer: latency, throughput, P@1, sizes"},
    {"cache", bench_cache, "learned caches vs full network vs LRU: latency, hits, agreement"},
    {"hash", bench_hash, "hashing, table build, sampling time and recall per hash family"},
};
}  // namespace

int cmd_bench(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::printf("usage: glide bench NAME [flags]\n\nbenchmarks:\n");
    for (const auto& b : kBenches) std::printf("  %-6s %s\n", b.name, b.help);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& b : kBenches) {
    if (std::strcmp(argv[1], b.name) != 0) continue;
    std::string name = std::string("glide bench ") + b.name;
    std::vector<char*> args(argv + 1, argv + argc);
    args[0] = name.data();
    return b.run(static_cast<int>(args.size()), args.data());
  }
  std::fprintf(stderr, "glide bench: unknown benchmark '%s'\n", argv[1]);
  return 2;
}

}  // namespace glide::cli
