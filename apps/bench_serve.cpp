// `glide bench serve`: a load generator (httplib clients, one per thread) against an in-process
// server on 127.0.0.1. For each mode (exact, and sampled at each probes setting), concurrency 1,
// 8 and 64, batching on and off: requests/s, p50/p99 latency, mean batch size, and where the
// server's time went (JSON parsing vs predict); then sampled mode against exact.
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
#include "engine/index_predictor.h"
#include "engine/model_file.h"
#include "engine/output_index.h"
#include "server/http_server.h"

namespace glide::cli {

namespace {

// The inputs requests are made of (the test set's first points, or random ones): as JSON
// instances, and as themselves for predict calls without HTTP.
struct Inputs {
  std::vector<nlohmann::json> instances;
  std::vector<std::vector<std::uint32_t>> ids;
  std::vector<std::vector<float>> values;
  std::vector<data::SparseView> views() const {
    std::vector<data::SparseView> v;
    for (std::size_t i = 0; i < ids.size(); ++i) v.push_back({ids[i], values[i]});
    return v;
  }
};

Inputs make_inputs(const engine::InferenceModel& model, const std::string& data_path,
                   std::size_t max_inputs) {
  Inputs in;
  auto add = [&](std::span<const std::uint32_t> ids, std::span<const float> values) {
    in.instances.push_back({{"indices", std::vector(ids.begin(), ids.end())},
                            {"values", std::vector(values.begin(), values.end())}});
    in.ids.emplace_back(ids.begin(), ids.end());
    in.values.emplace_back(values.begin(), values.end());
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
  if (in.instances.empty()) fail(data_path, "no inputs");
  return in;
}

// Points/s of the predictor alone over the same inputs, `batch` per predict call (as `glide eval`
// runs it, without HTTP or JSON): what a batching cell's requests/s is measured against.
double predict_alone(const engine::Predictor& predictor, std::span<const data::SparseView> inputs,
                     std::size_t batch, std::uint32_t k, const engine::SearchParams& params,
                     double seconds) {
  std::vector<engine::Prediction> out;
  std::size_t points = 0, next = 0;
  std::vector<data::SparseView> chunk;
  const auto start = Clock::now();
  do {
    chunk.clear();
    for (std::size_t i = 0; i < batch; ++i) chunk.push_back(inputs[next++ % inputs.size()]);
    predictor.predict(chunk, k, out, params);
    points += chunk.size();
  } while (seconds_since(start) < seconds);
  return points / seconds_since(start);
}

// What one row of the table serves: a mode, and in sampled mode the probes (0: the default).
struct ServeMode {
  engine::EvalMode mode = engine::EvalMode::kExact;
  std::uint32_t probes = 0;
};

// Request bodies made up front (one instance each), so the clients spend their time on HTTP,
// not on JSON.
std::vector<std::string> make_bodies(const std::vector<nlohmann::json>& instances, std::uint32_t k,
                                     const ServeMode& m) {
  std::vector<std::string> bodies;
  for (const auto& inst : instances) {
    nlohmann::json body = {
        {"instances", {inst}}, {"k", k}, {"mode", engine::eval_mode_name(m.mode)}};
    if (m.probes) body["probes"] = m.probes;
    bodies.push_back(body.dump());
  }
  return bodies;
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
                     "latency and the parse/predict time split, batching on and off, exact and "
                     "sampled mode.");
  o.add_options()("model", "model file (.glide)", cxxopts::value<std::string>())(
      "data", "test set to draw request inputs from (.gds or any format glide reads)",
      cxxopts::value<std::string>()->default_value(""))(
      "inputs", "distinct inputs (requests cycle through them)",
      cxxopts::value<std::size_t>()->default_value("2000"))(
      "seconds", "duration of each cell", cxxopts::value<double>()->default_value("3"))(
      "concurrency", "client threads per cell",
      cxxopts::value<std::string>()->default_value("1,8,64"))(
      "k", "labels per request", cxxopts::value<std::uint32_t>()->default_value("5"))(
      "mode",
      "exact, sampled or a list (exact,sampled); default: both when the model has an output "
      "index, else exact",
      cxxopts::value<std::string>())("probes", probes_help("a list prints a row each"),
                                     cxxopts::value<std::string>())(
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
  const std::string path = r["model"].as<std::string>();
  std::vector<engine::EvalMode> modes;
  if (r.count("mode")) {
    modes = parse_list(r["mode"].as<std::string>(), "mode", [](const std::string& item) {
      return engine::parse_eval_mode(parse_choice(item, {"exact", "sampled"}));
    });
  } else {
    modes = {engine::EvalMode::kExact};
    if (engine::OutputIndex::in_file(engine::ModelFileReader(path)))
      modes.push_back(engine::EvalMode::kSampled);
  }
  std::vector<std::uint32_t> probes{0};
  if (r.count("probes")) probes = parse_probes_list(r["probes"].as<std::string>());
  const std::uint32_t k = r["k"].as<std::uint32_t>();

  const auto load0 = Clock::now();
  // Exact mode is always loaded (InferenceModel's rule); sampled mode only when measured.
  auto model = std::make_shared<const engine::InferenceModel>(path, modes);
  std::printf("model %s: %u features, %u labels, loaded in %.1f s\n", path.c_str(),
              model->config().net.num_features, model->config().net.num_labels,
              seconds_since(load0));
  // The rows: each mode; sampled mode once per probes setting when it searches an index.
  const engine::IndexPredictor* index = nullptr;
  std::vector<ServeMode> rows;
  for (const engine::EvalMode mode : modes) {
    if (mode == engine::EvalMode::kExact) {
      rows.push_back({mode, 0});
      continue;
    }
    index = dynamic_cast<const engine::IndexPredictor*>(&model->predictor(mode));
    if (index)
      std::printf("sampled mode searches the output index (%u clusters)\n",
                  index->index().clusters());
    else
      std::printf("sampled mode searches LSH tables (the model file has no output index)\n");
    for (const std::uint32_t p : probes) {
      rows.push_back({mode, p});
      if (!index) break;  // the LSH tables have no probes
    }
  }
  auto shown_probes = [&](const ServeMode& m) {
    return m.mode == engine::EvalMode::kSampled && index
               ? std::to_string(index->probes({.probes = m.probes}))
               : std::string("-");
  };
  const Inputs inputs_made =
      make_inputs(*model, r["data"].as<std::string>(), r["inputs"].as<std::size_t>());
  const std::vector<nlohmann::json>& instances = inputs_made.instances;
  const std::vector<data::SparseView> inputs = inputs_made.views();
  std::printf(
      "%zu distinct requests (1 instance each, k=%u), %.1f s per cell, %u predict threads\n\n",
      instances.size(), k, seconds, threads);
  std::printf("%-8s %6s %-8s %5s %9s %9s %9s %9s %7s %10s %11s %7s %7s %9s %6s\n", "mode", "probes",
              "batching", "conc", "requests", "req/s", "p50 ms", "p99 ms", "batch", "parse us",
              "predict us", "parse%", "errors", "alone/s", "ratio");

  // cells[batching][row][concurrency index]
  std::vector<std::vector<std::vector<Cell>>> cells(2);
  for (const bool batching_on : {true, false}) {
    server::BatcherOptions batching;
    batching.max_batch =
        batching_on ? std::max<std::size_t>(1, r["max-batch"].as<std::size_t>()) : 1;
    batching.max_delay = std::chrono::microseconds(r["max-delay-us"].as<unsigned>());
    batching.max_queue = 100000;
    server::Metrics metrics;
    std::vector<std::unique_ptr<server::ServedModel>> models;
    models.push_back(std::make_unique<server::ServedModel>(server::ModelSpec{"m", path}, model,
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
    for (const ServeMode& row : rows) {
      const auto bodies = make_bodies(instances, k, row);
      auto& row_cells = cells[batching_on ? 0 : 1].emplace_back();
      for (const int c : concurrency) {
        const Cell cell = run_cell(port, bodies, "/v1/models/m:predict", c, seconds, metrics);
        row_cells.push_back(cell);
        const auto& s = cell.split;
        const double busy = s.parse + s.predict + s.write;
        const double mean_batch = s.batches ? double(s.instances) / s.batches : 0.0;
        // Right after the cell, the predictor alone at the cell's mean batch size.
        const double alone = predict_alone(
            model->predictor(row.mode), inputs,
            std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(mean_batch))), k,
            {.probes = row.probes}, seconds);
        const double rps = cell.requests / cell.seconds;
        std::printf(
            "%-8s %6s %-8s %5d %9zu %9.0f %9.3f %9.3f %7.1f %10.1f %11.1f %6.1f%% %7zu %9.0f "
            "%6.2f\n",
            engine::eval_mode_name(row.mode), shown_probes(row).c_str(), batching_on ? "on" : "off",
            c, cell.requests, rps, cell.p50_ms, cell.p99_ms, mean_batch,
            cell.requests ? 1e6 * s.parse / cell.requests : 0.0,
            s.batches ? 1e6 * s.predict / s.batches : 0.0, busy > 0 ? 100 * s.parse / busy : 0.0,
            cell.errors, alone, rps / alone);
        if (cell.errors) std::printf("  (first error: %s)\n", cell.first_error.c_str());
        std::fflush(stdout);
      }
    }
    http.stop();
    serving.join();
    registry.stop();
  }
  std::printf(
      "\nparse us: JSON parsing + validation per request; predict us: one predict call (a "
      "batch);\nparse%%: parsing's share of the server's parse + predict + write time;\n"
      "alone/s: points/s of the row's predictor alone (no HTTP, as glide eval) at the cell's "
      "mean batch,\nmeasured right after the cell; ratio: req/s / alone/s.\n");

  // Sampled against exact: latency unbatched at the first concurrency (no batching delay in
  // it), throughput batched at each.
  const auto exact_row = std::find_if(rows.begin(), rows.end(), [](const ServeMode& m) {
    return m.mode == engine::EvalMode::kExact;
  });
  if (rows.size() > 1 && exact_row != rows.end()) {
    std::printf(
        "\nsampled vs exact: p50 with batching off; x: sampled's requests/s over exact's with "
        "batching on\n");
    const auto& exact = cells[0][exact_row - rows.begin()];
    const auto& exact_off = cells[1][exact_row - rows.begin()];
    for (std::size_t row = 0; row < rows.size(); ++row) {
      if (rows[row].mode == engine::EvalMode::kExact) continue;
      const auto& sampled = cells[0][row];
      std::printf("  probes %s: p50 %.3f vs %.3f ms at concurrency %d;",
                  shown_probes(rows[row]).c_str(), cells[1][row][0].p50_ms, exact_off[0].p50_ms,
                  concurrency[0]);
      for (std::size_t c = 0; c < concurrency.size(); ++c) {
        const double ratio = exact[c].requests
                                 ? static_cast<double>(sampled[c].requests) / sampled[c].seconds /
                                       (exact[c].requests / exact[c].seconds)
                                 : 0.0;
        std::printf("%s%.1fx at %d", c ? ", " : " ", ratio, concurrency[c]);
      }
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace glide::cli
