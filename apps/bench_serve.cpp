// `glide bench serve`: a load generator (httplib clients, one per thread) against an in-process
// server on 127.0.0.1. For concurrency 1, 8 and 64, batching on and off: requests/s, p50/p99
// latency, mean batch size, and where the server's time went (JSON parsing vs predict).
#include <tbb/global_control.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "apps/bench_util.h"
#include "apps/commands.h"
#include "apps/config_flags.h"
#include "common/error.h"
#include "data/dataset_io.h"
#include "server/http_server.h"

namespace glide::cli {

namespace {

// The request inputs: their bodies made up front, so the clients spend their time on HTTP, not
// on JSON, and the inputs themselves for predict calls without HTTP.
struct Requests {
  std::vector<std::string> bodies;
  std::vector<std::vector<std::uint32_t>> ids;
  std::vector<std::vector<float>> values;
  std::vector<data::SparseView> views() const {
    std::vector<data::SparseView> v;
    for (std::size_t i = 0; i < ids.size(); ++i) v.push_back({ids[i], values[i]});
    return v;
  }
};

Requests make_requests(const engine::InferenceModel& model, const std::string& data_path,
                       std::size_t max_inputs, std::uint32_t k) {
  Requests req;
  std::vector<std::string>& bodies = req.bodies;
  auto add = [&](std::span<const std::uint32_t> ids, std::span<const float> values) {
    nlohmann::json inst = {{"indices", std::vector(ids.begin(), ids.end())},
                           {"values", std::vector(values.begin(), values.end())}};
    bodies.push_back(nlohmann::json{{"instances", {inst}}, {"k", k}}.dump());
    req.ids.emplace_back(ids.begin(), ids.end());
    req.values.emplace_back(values.begin(), values.end());
  };
  const std::uint32_t features = model.config().net.num_features;
  if (!data_path.empty()) {
    const data::Dataset ds = data::read_dataset(data_path);
    if (ds.num_features > features)
      fail(data_path, "has " + std::to_string(ds.num_features) + " features, the model " +
                          std::to_string(features));
    for (std::size_t i = 0; i < std::min(max_inputs, ds.num_points()); ++i)
      add(ds.features(i).ids, ds.features(i).values);
  } else {  // random inputs of 50 features when no test set is given
    std::mt19937_64 rng(1);
    for (std::size_t i = 0; i < max_inputs; ++i) {
      std::vector<std::uint32_t> ids(50);
      std::vector<float> values(50, 1.0f);
      for (auto& id : ids) id = static_cast<std::uint32_t>(rng() % features);
      add(ids, values);
    }
  }
  if (bodies.empty()) fail(data_path, "no inputs");
  return req;
}

// Points/s of the predictor alone over the same inputs, `batch` per predict call (as `glide eval`
// runs it, without HTTP or JSON): what a batching cell's requests/s is measured against.
double predict_alone(const engine::Predictor& predictor, std::span<const data::SparseView> inputs,
                     std::size_t batch, std::uint32_t k, double seconds) {
  std::vector<engine::Prediction> out;
  std::size_t points = 0, next = 0;
  std::vector<data::SparseView> chunk;
  const auto start = Clock::now();
  do {
    chunk.clear();
    for (std::size_t i = 0; i < batch; ++i) chunk.push_back(inputs[next++ % inputs.size()]);
    predictor.predict(chunk, k, out);
    points += chunk.size();
  } while (seconds_since(start) < seconds);
  return points / seconds_since(start);
}

struct Cell {
  std::size_t requests = 0, errors = 0;
  std::string first_error;
  double seconds = 0, p50_ms = 0, p99_ms = 0;
  server::TimeSplit split;
};

Cell run_cell(int port, const std::vector<std::string>& bodies, const std::string& path,
              int concurrency, double seconds, server::Metrics& metrics) {
  const server::TimeSplit before = metrics.time_split();
  std::atomic<std::size_t> next = 0, errors = 0;
  std::mutex first_error_mutex;
  std::string first_error;
  std::vector<std::vector<double>> latencies(concurrency);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t)
    threads.emplace_back([&, t] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      client.set_read_timeout(30);
      // Bounded in time (the deadline) and in count.
      for (std::size_t i = 0; i < 10'000'000 && Clock::now() < deadline; ++i) {
        const std::string& body = bodies[next++ % bodies.size()];
        const auto t0 = Clock::now();
        const auto r = client.Post(path.c_str(), body, "application/json");
        if (!r || r->status != 200) {
          if (errors++ == 0) {
            std::lock_guard lock(first_error_mutex);
            first_error = r ? "HTTP " + std::to_string(r->status) + " " + r->body
                            : httplib::to_string(r.error());
          }
          continue;
        }
        latencies[t].push_back(1e3 * seconds_since(t0));
      }
    });
  for (auto& t : threads) t.join();
  Cell c;
  c.seconds = seconds_since(start);
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  c.requests = all.size();
  c.errors = errors;
  c.first_error = first_error;
  c.p50_ms = percentile_of_sorted(all, 0.5);
  c.p99_ms = percentile_of_sorted(all, 0.99);
  const server::TimeSplit after = metrics.time_split();
  c.split = {after.parse - before.parse,     after.queue_wait - before.queue_wait,
             after.predict - before.predict, after.write - before.write,
             after.batches - before.batches, after.instances - before.instances};
  return c;
}

}  // namespace

int bench_serve(int argc, char** argv) {
  cxxopts::Options o("glide bench serve",
                     "Load test of glide serve in process on 127.0.0.1: requests/s, p50/p99 "
                     "latency and the parse/predict time split, batching on and off.");
  o.add_options()("model", "model file (.glide)", cxxopts::value<std::string>())(
      "data", "test set to draw request inputs from (.gds or any format glide reads)",
      cxxopts::value<std::string>()->default_value(""))(
      "inputs", "distinct inputs (requests cycle through them)",
      cxxopts::value<std::size_t>()->default_value("2000"))(
      "seconds", "duration of each cell", cxxopts::value<double>()->default_value("3"))(
      "concurrency", "client threads per cell",
      cxxopts::value<std::string>()->default_value("1,8,64"))(
      "k", "labels per request", cxxopts::value<std::uint32_t>()->default_value("5"))(
      "max-batch", "max batch with batching on",
      cxxopts::value<std::size_t>()->default_value("64"))(
      "max-delay-us", "batching delay", cxxopts::value<unsigned>()->default_value("500"))(
      "threads", "threads per predict call (0: all cores)",
      cxxopts::value<unsigned>()->default_value("0"))("h,help", "this help");
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  reject_unmatched(r);
  if (!r.count("model")) fail("--model FILE is required");
  const unsigned threads = r["threads"].as<unsigned>() ? r["threads"].as<unsigned>()
                                                       : std::thread::hardware_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
  const std::vector<int> concurrency = parse_list(
      r["concurrency"].as<std::string>(), "concurrency",
      [](const std::string& item) { return static_cast<int>(parse_integer(item, 1, 10000)); });
  const double seconds = std::max(0.1, r["seconds"].as<double>());

  const auto load0 = Clock::now();
  const std::string path = r["model"].as<std::string>();
  auto predictor = std::make_shared<const engine::InferenceModel>(path, false);
  std::printf("model %s: %u features, %u labels, loaded in %.1f s\n", path.c_str(),
              predictor->config().net.num_features, predictor->config().net.num_labels,
              seconds_since(load0));
  const Requests requests =
      make_requests(*predictor, r["data"].as<std::string>(), r["inputs"].as<std::size_t>(),
                    r["k"].as<std::uint32_t>());
  const std::vector<std::string>& bodies = requests.bodies;
  const std::vector<data::SparseView> inputs = requests.views();
  std::printf(
      "%zu distinct requests (1 instance each, k=%u), %.1f s per cell, %u predict threads\n\n",
      bodies.size(), r["k"].as<std::uint32_t>(), seconds, threads);
  std::printf("%-8s %5s %9s %9s %9s %9s %7s %10s %11s %7s %7s %9s %6s\n", "batching", "conc",
              "requests", "req/s", "p50 ms", "p99 ms", "batch", "parse us", "predict us", "parse%",
              "errors", "alone/s", "ratio");

  for (const bool batching_on : {true, false}) {
    server::BatcherOptions batching;
    batching.max_batch =
        batching_on ? std::max<std::size_t>(1, r["max-batch"].as<std::size_t>()) : 1;
    batching.max_delay = std::chrono::microseconds(r["max-delay-us"].as<unsigned>());
    batching.max_queue = 100000;
    server::Metrics metrics;
    std::vector<std::unique_ptr<server::ServedModel>> models;
    models.push_back(std::make_unique<server::ServedModel>(server::ModelSpec{"m", path}, predictor,
                                                           batching, &metrics));
    server::ModelRegistry registry(std::move(models));
    server::ServerOptions options;
    options.port = 0;
    options.access_log = false;
    options.http_threads =
        static_cast<std::size_t>(*std::max_element(concurrency.begin(), concurrency.end())) + 8;
    server::HttpServer http(registry, metrics, options);
    const int port = http.bind();
    std::thread serving([&] { http.serve(); });
    for (const int c : concurrency) {
      const Cell cell = run_cell(port, bodies, "/v1/models/m:predict", c, seconds, metrics);
      const auto& s = cell.split;
      const double busy = s.parse + s.predict + s.write;
      const double mean_batch = s.batches ? double(s.instances) / s.batches : 0.0;
      // Right after the cell, the predictor alone at the cell's mean batch size.
      const double alone =
          predict_alone(predictor->predictor(engine::EvalMode::kExact), inputs,
                        std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(mean_batch))),
                        r["k"].as<std::uint32_t>(), seconds);
      const double rps = cell.requests / cell.seconds;
      std::printf("%-8s %5d %9zu %9.0f %9.3f %9.3f %7.1f %10.1f %11.1f %6.1f%% %7zu %9.0f %6.2f\n",
                  batching_on ? "on" : "off", c, cell.requests, rps, cell.p50_ms, cell.p99_ms,
                  mean_batch, cell.requests ? 1e6 * s.parse / cell.requests : 0.0,
                  s.batches ? 1e6 * s.predict / s.batches : 0.0,
                  busy > 0 ? 100 * s.parse / busy : 0.0, cell.errors, alone, rps / alone);
      if (cell.errors) std::printf("  (first error: %s)\n", cell.first_error.c_str());
      std::fflush(stdout);
    }
    http.stop();
    serving.join();
    registry.stop();
  }
  std::printf(
      "\nparse us: JSON parsing + validation per request; predict us: one predict call (a "
      "batch);\nparse%%: parsing's share of the server's parse + predict + write time;\n"
      "alone/s: points/s of the exact predictor alone (no HTTP, as glide eval) at the cell's mean "
      "batch,\nmeasured right after the cell; ratio: req/s / alone/s.\n");
  return 0;
}

}  // namespace glide::cli
