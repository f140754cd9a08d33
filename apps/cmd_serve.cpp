// `glide serve`: the REST server (server/) over one or more model files, with signals: SIGHUP
// reloads every model, SIGTERM/SIGINT stop accepting, answer what is in flight and exit 0.
#include <pthread.h>
#include <sys/resource.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <cxxopts.hpp>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "apps/bench_util.h"
#include "apps/cache_flags.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "apps/sharded_run.h"
#include "common/error.h"
#include "engine/sharded_model.h"
#include "server/http_server.h"

namespace glide::cli {

namespace {

// Each connection holds a descriptor: raise the soft limit toward the hard one so that
// --max-connections, not the default limit of 1,024, is what bounds them (model files, the log and
// the listening socket need a few more).
void raise_file_limit(std::size_t connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = static_cast<rlim_t>(connections) + 64;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
    lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

std::string seconds_default(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

// A deadline flag's value: a positive, finite number of seconds.
double seconds_flag(const cxxopts::ParseResult& r, const char* flag) {
  const double s = r[flag].as<double>();
  if (!(s > 0) || !std::isfinite(s))
    fail("--" + std::string(flag),
         "must be a positive number of seconds, got " + seconds_default(s));
  return s;
}

// `glide serve`; with `shards`, as one rank of a label-sharded model's server under mpirun: rank
// 0 answers HTTP for one model (exact mode), every rank scores its shard of each batch.
int run_serve(int argc, char** argv, ShardedRun* shards) {
  cxxopts::Options o("glide serve",
                     "Serves models over HTTP: TensorFlow Serving style /v1 and KServe v2 "
                     "endpoints, Prometheus /metrics (docs/serving.md).");
  o.add_options()("model", "[NAME=]PATH of a model to serve (repeat for several)",
                  cxxopts::value<std::vector<std::string>>())(
      "host", "address to listen on", cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port (0: any free one, printed at startup)",
      cxxopts::value<int>()->default_value("8080"))("threads",
                                                    "threads per predict call (0: all cores)",
                                                    cxxopts::value<unsigned>()->default_value("0"))(
      "http-threads", "requests handled at once (a stalled connection holds none)",
      cxxopts::value<std::size_t>()->default_value("64"))(
      "header-timeout", "seconds a request's headers may take from its first byte (408 after)",
      cxxopts::value<double>()->default_value(
          seconds_default(server::ServerOptions{}.header_timeout_seconds)))(
      "body-timeout",
      "seconds a request's body may take after its headers (408 after); also how long an answer "
      "may wait for the client to read it",
      cxxopts::value<double>()->default_value(
          seconds_default(server::ServerOptions{}.body_timeout_seconds)))(
      "keep-alive-timeout", "seconds an idle keep-alive connection stays open",
      cxxopts::value<double>()->default_value(
          seconds_default(server::ServerOptions{}.keep_alive_seconds)))(
      "max-connections", "open connections at most (more wait until one closes)",
      cxxopts::value<std::size_t>()->default_value(
          std::to_string(server::ServerOptions{}.max_connections)))(
      "max-batch", "instances per batched predict call (1: no batching)",
      cxxopts::value<std::size_t>()->default_value("64"))(
      "max-delay-us", "how long a request waits for others to batch with",
      cxxopts::value<unsigned>()->default_value("500"))(
      "max-queue", "requests waiting per model before 503",
      cxxopts::value<std::size_t>()->default_value("1024"))(
      "max-body-bytes", "largest request body (413 above)",
      cxxopts::value<std::size_t>()->default_value(std::to_string(64 << 20)))(
      "max-k", "most labels an instance may ask for (400 above)",
      cxxopts::value<std::uint32_t>()->default_value(
          std::to_string(server::ServerOptions{}.max_k)))(
      "max-response-labels", "most labels (instances x k) one request may ask for (400 above)",
      cxxopts::value<std::uint64_t>()->default_value(
          std::to_string(server::ServerOptions{}.max_response_labels)))(
      "probes", probes_help("for requests that do not say"), cxxopts::value<std::string>())(
      "no-batching", "same as --max-batch 1")(
      "no-lsh",
      "build no LSH tables (less memory): sampled mode then only for models with an output "
      "index (the others answer 400)")(
      "cache-layers", "hidden layers (0-based, comma-separated) with a cache; default: the last",
      cxxopts::value<std::string>()->default_value(""))(
      "cache-shadow", "share of hits also checked against the full model",
      cxxopts::value<double>()->default_value("0.05"))(
      "cache-skip",
      "skip a cache's lookups while they cost more than they save (on suits deep models with "
      "wide cached layers; docs/caches.md): on or off",
      cxxopts::value<std::string>()->default_value("off"))("quiet", "no access log")("h,help",
                                                                                     "this help");
  add_cache_switch(o, "learned caches over hidden layers (docs/caches.md)");
  add_cache_flags(o);
#ifdef __GLIBC__
  // Blocks of 128 KB and more straight from mmap, so that a reload hands the old model's memory
  // back at once: glibc's adaptive threshold otherwise rises to the largest block freed and keeps
  // the tables of each reload in its heap (+103 MB after 60 reloads of a 21 MB model; +6 MB with
  // this, docs/serving.md). The environment's MALLOC_MMAP_THRESHOLD_ wins.
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  if (!r.count("model")) fail("--model [NAME=]PATH is required");

  // Signals go to one thread that waits for them; block them before any thread starts (TBB's
  // included) so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const unsigned threads = r["threads"].as<unsigned>() ? r["threads"].as<unsigned>()
                                                       : std::thread::hardware_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);

  std::vector<server::ModelSpec> specs;
  for (const auto& m : r["model"].as<std::vector<std::string>>())
    specs.push_back(server::parse_model_spec(m));
  server::BatcherOptions batching;
  batching.max_batch =
      r.count("no-batching") ? 1 : std::max<std::size_t>(1, r["max-batch"].as<std::size_t>());
  batching.max_delay = std::chrono::microseconds(r["max-delay-us"].as<unsigned>());
  batching.max_queue = std::max<std::size_t>(1, r["max-queue"].as<std::size_t>());
  server::ServerOptions options;
  options.host = r["host"].as<std::string>();
  options.port = r["port"].as<int>();
  options.http_threads = r["http-threads"].as<std::size_t>();
  options.max_body_bytes = r["max-body-bytes"].as<std::size_t>();
  options.max_k = r["max-k"].as<std::uint32_t>();
  options.max_response_labels = r["max-response-labels"].as<std::uint64_t>();
  options.header_timeout_seconds = seconds_flag(r, "header-timeout");
  options.body_timeout_seconds = seconds_flag(r, "body-timeout");
  options.keep_alive_seconds = seconds_flag(r, "keep-alive-timeout");
  options.max_connections = r["max-connections"].as<std::size_t>();
  if (options.max_connections == 0) fail("--max-connections", "must be at least 1");
  raise_file_limit(options.max_connections);
  options.access_log = !r.count("quiet");
  if (r.count("probes")) options.probes = parse_probes_flag(r["probes"].as<std::string>());

  std::optional<cache::CachedOptions> caching;
  if (cache_switch(r)) {
    cache::CachedOptions c;
    c.layers = cache::parse_layers(r["cache-layers"].as<std::string>(), 64);
    c.target = apply_cache_flags(r, c.cache);
    c.shadow_fraction = std::clamp(r["cache-shadow"].as<double>(), 0.0, 1.0);
    c.skip_unprofitable = on_off_flag(r, "cache-skip");
    caching = c;
  }
  server::Metrics metrics;
  std::unique_ptr<server::ModelRegistry> registry_holder;
  if (shards) {
    if (specs.size() != 1 || caching)
      fail("under mpirun, glide serve serves one label-sharded model (--model), without --cache");
    engine::LoadedModel m = shards->load(specs[0].path, /*optimizer_state=*/false);
    const engine::LabelRange range =
        engine::shard_range(m.config.net.num_labels, shards->ranks, shards->rank);
    if (shards->rank != 0) {
      shards->serve(*m.net, range);
      return 0;
    }
    const auto model = std::make_shared<const engine::InferenceModel>(
        std::move(m.net), m.config, std::vector{engine::EvalMode::kExact});
    const auto exact = shards->sharded_predictor(
        model->predictor(engine::EvalMode::kExact).shared_network(), range);
    std::vector<std::unique_ptr<server::ServedModel>> models;
    models.push_back(
        std::make_unique<server::ServedModel>(specs[0], model, exact, batching, &metrics));
    registry_holder = std::make_unique<server::ModelRegistry>(std::move(models));
  } else {
    registry_holder = std::make_unique<server::ModelRegistry>(specs, !r.count("no-lsh"), batching,
                                                              &metrics, caching);
  }
  server::ModelRegistry& registry = *registry_holder;
  server::HttpServer http(registry, metrics, options);
  const int port = http.bind();
  std::printf("glide serve: listening on http://%s:%d (models: %s)\n", options.host.c_str(), port,
              registry.names().c_str());
  std::fflush(stdout);

  std::thread signal_thread([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        server::log_line("SIGHUP: reloading every model");
        registry.reload_all(server::log_line);
        continue;
      }
      server::log_line(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") +
                       ": stopping, answering requests in flight");
      http.stop();
      return;
    }
  });
  http.serve();
  // serve() only returns once stopped, which the signal thread does before it ends; if serve()
  // ended on its own (the socket failed), wake the signal thread so it can be joined.
  if (signal_thread.joinable() && http.ready())
    pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  registry.stop();
  if (shards) shards->stop_serving();
  server::log_line("stopped");
  return 0;
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  if (launched_ranks() <= 1) return run_serve(argc, argv, nullptr);
  // MPI starts threads of its own: block the signals the server waits for before it does, so
  // that a SIGTERM reaches the server's signal thread (rank 0), not a thread that dies of it. The
  // other ranks keep them blocked: they end when rank 0 stops.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return run_sharded(argc, argv, run_serve);
}

}  // namespace glide::cli
