// The server end to end, in process on an ephemeral 127.0.0.1 port, through httplib clients:
// answers equal Predictor::predict, every error status, batching under concurrency, hot reload
// under load and of a damaged file, queue overflow and graceful shutdown.
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/checkpoint.h"
#include "engine/predictor.h"
#include "server/http_server.h"

using namespace glide;
using namespace glide::server;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kFeatures = 3000, kLabels = 400;

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "glide_server_test";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// A small untrained model (random weights answer deterministically, which is all we compare);
// tiny LSH tables so sampled mode is cheap.
void write_model(const std::string& path, std::uint64_t seed) {
  engine::Config c;
  c.net.num_features = kFeatures;
  c.net.num_labels = kLabels;
  c.net.hidden = {32};
  c.net.seed = seed;
  c.net.sparsity = 0.1;
  c.net.lsh.L = 4;
  c.net.lsh.range_pow = 8;
  engine::Network net(c.net);
  engine::save_model(path, net, c, {}, {false, 1, 1, {}});
}

struct Input {
  std::vector<std::uint32_t> ids;
  std::vector<float> values;
  data::SparseView view() const { return {ids, values}; }
  json as_json() const { return {{"indices", ids}, {"values", values}}; }
};

std::vector<Input> make_inputs(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Input> out(n);
  for (auto& x : out) {
    const std::size_t nnz = 3 + rng() % 20;
    for (std::size_t j = 0; j < nnz; ++j) {
      x.ids.push_back(static_cast<std::uint32_t>(rng() % kFeatures));
      x.values.push_back(static_cast<float>(rng() % 1000) / 997.0f + 0.01f);
    }
  }
  return out;
}

std::vector<engine::Prediction> expected(const engine::Predictor& p, const std::vector<Input>& xs,
                                         std::uint32_t k,
                                         engine::EvalMode mode = engine::EvalMode::kExact) {
  std::vector<engine::Prediction> out;
  for (const auto& x : xs) {  // one at a time, as `glide predict --batch 1` would
    std::vector<engine::Prediction> one;
    const data::SparseView v = x.view();
    p.predict({&v, 1}, k, mode, one);
    out.push_back(one[0]);
  }
  return out;
}

// Labels exactly, scores to float rounding: the engine's softmax normalizer sums per-thread
// partial sums in scheduling order and its kernels block over the batch, so the same input can
// differ in the last bits between calls with different batch mates (glide predict batches too).
bool close(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i] - b[i]) > 1e-5f * std::max(std::abs(a[i]), std::abs(b[i])) + 1e-30f)
      return false;
  return true;
}

bool same(const json& got, const engine::Prediction& want) {
  return got["labels"].get<std::vector<std::uint32_t>>() == want.labels &&
         close(got["scores"].get<std::vector<float>>(), want.scores);
}

// Holds the batcher's worker before each batch until opened (bounded: opens itself after 10 s).
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  int entered = 0;
  void pass() {
    std::unique_lock lock(m);
    ++entered;
    cv.notify_all();
    cv.wait_for(lock, 10s, [&] { return open; });
  }
  bool wait_entered(int n) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, 10s, [&] { return entered >= n; });
  }
  void release() {
    std::lock_guard lock(m);
    open = true;
    cv.notify_all();
  }
};

struct TestServer {
  Metrics metrics;
  std::unique_ptr<ModelRegistry> registry;
  std::unique_ptr<HttpServer> http;
  std::thread thread;
  int port = 0;

  explicit TestServer(std::vector<ModelSpec> specs, BatcherOptions batching = {},
                      ServerOptions options = {},
                      std::optional<cache::CachedOptions> caching = std::nullopt) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.access_log = false;
    registry = std::make_unique<ModelRegistry>(specs, true, batching, &metrics, caching);
    http = std::make_unique<HttpServer>(*registry, metrics, options);
    port = http->bind();
    thread = std::thread([this] { http->serve(); });
  }
  ~TestServer() {
    http->stop();
    thread.join();
    registry->stop();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(20);
    c.set_tcp_nodelay(true);
    return c;
  }
};

httplib::Result post(const TestServer& s, const std::string& path, const std::string& body) {
  return s.client().Post(path.c_str(), body, "application/json");
}

// Request metrics are counted after the response is sent: wait (bounded) for them to land.
template <class F>
bool eventually(F&& condition) {
  for (int i = 0; i < 200; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

json predict_body(const std::vector<Input>& xs, std::uint32_t k) {
  json instances = json::array();
  for (const auto& x : xs) instances.push_back(x.as_json());
  return {{"instances", instances}, {"k", k}};
}

}  // namespace

TEST_CASE("predictions over HTTP equal Predictor::predict (v1 and v2, exact and sampled)") {
  const std::string path = temp_path("equal.glide");
  write_model(path, 1);
  const engine::Predictor predictor(path, true);
  TestServer server({{"m", path}});
  const auto xs = make_inputs(12, 7);
  const auto want = expected(predictor, xs, 5);

  // One request with several instances.
  auto r = post(server, "/v1/models/m:predict", predict_body(xs, 5).dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  const json got = json::parse(r->body);
  REQUIRE(got["predictions"].size() == xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(same(got["predictions"][i], want[i]));

  // The "features" object form and k. An object cannot repeat an id, and the parser reads it
  // in key order: compare with that input.
  json object_form = json::object();
  for (std::size_t j = 0; j < xs[3].ids.size(); ++j)
    object_form[std::to_string(xs[3].ids[j])] = xs[3].values[j];
  Input as_read;
  for (const auto& [key, v] : object_form.items()) {
    as_read.ids.push_back(static_cast<std::uint32_t>(std::stoul(key)));
    as_read.values.push_back(v.get<float>());
  }
  r = post(server, "/v1/models/m:predict",
           json{{"instances", {{{"features", object_form}}}}, {"k", 3}}.dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  CHECK(same(json::parse(r->body)["predictions"][0], expected(predictor, {as_read}, 3)[0]));

  // Sampled mode.
  const auto want_sampled = expected(predictor, xs, 4, engine::EvalMode::kSampled);
  json sampled = predict_body(xs, 4);
  sampled["mode"] = "sampled";
  r = post(server, "/v1/models/m:predict", sampled.dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  for (std::size_t i = 0; i < xs.size(); ++i)
    CHECK(same(json::parse(r->body)["predictions"][i], want_sampled[i]));

  // KServe v2 tensors.
  std::vector<std::uint32_t> ids;
  std::vector<float> values;
  std::vector<std::uint64_t> offsets{0};
  for (const auto& x : xs) {
    ids.insert(ids.end(), x.ids.begin(), x.ids.end());
    values.insert(values.end(), x.values.begin(), x.values.end());
    offsets.push_back(ids.size());
  }
  const json infer = {
      {"id", "q1"},
      {"parameters", {{"k", 5}}},
      {"inputs",
       {{{"name", "indices"}, {"datatype", "INT32"}, {"shape", {ids.size()}}, {"data", ids}},
        {{"name", "values"}, {"datatype", "FP32"}, {"shape", {values.size()}}, {"data", values}},
        {{"name", "offsets"},
         {"datatype", "INT64"},
         {"shape", {offsets.size()}},
         {"data", offsets}}}}};
  r = post(server, "/v2/models/m/infer", infer.dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  const json v2 = json::parse(r->body);
  CHECK(v2["id"] == "q1");
  CHECK(v2["outputs"][0]["shape"] == json({xs.size(), 5}));
  const auto labels = v2["outputs"][0]["data"].get<std::vector<std::uint32_t>>();
  const auto scores = v2["outputs"][1]["data"].get<std::vector<float>>();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    CHECK(std::vector(labels.begin() + 5 * i, labels.begin() + 5 * i + 5) == want[i].labels);
    CHECK(close(std::vector(scores.begin() + 5 * i, scores.begin() + 5 * i + 5), want[i].scores));
  }
}

TEST_CASE("status, metadata, health and metrics endpoints") {
  const std::string path = temp_path("status.glide");
  write_model(path, 2);
  TestServer server({{"m", path}, {"other", path}});
  auto c = server.client();
  auto r = c.Get("/v1/models/m");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(json::parse(r->body)["model_version_status"][0]["state"] == "AVAILABLE");
  CHECK(json::parse(r->body)["model_version_status"][0]["version"] == "1");
  r = c.Get("/v1/models/other/metadata");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(json::parse(r->body)["metadata"]["shapes"]["num_features"] == kFeatures);
  CHECK(json::parse(r->body)["metadata"]["config"]["network"]["num_labels"] == kLabels);
  for (const char* p : {"/v2/health/live", "/v2/health/ready", "/v2/models/m/ready", "/v2"}) {
    r = c.Get(p);
    REQUIRE(r);
    CHECK_MESSAGE(r->status == 200, p);
  }
  r = c.Get("/v2/models/m");
  REQUIRE(r);
  CHECK(json::parse(r->body)["inputs"][2]["name"] == "offsets");
  post(server, "/v1/models/m:predict", predict_body(make_inputs(2, 1), 3).dump());
  CHECK(eventually([&] { return server.metrics.requests("predict", 200) == 1; }));
  r = c.Get("/metrics");
  REQUIRE(r);
  CHECK(r->status == 200);
  for (const char* s :
       {"glide_http_requests_total{endpoint=\"predict\",code=\"200\"} 1",
        "glide_http_request_duration_seconds_bucket{endpoint=\"predict\",le=\"+Inf\"} 1",
        "glide_http_request_duration_seconds_sum{endpoint=\"predict\"}",
        "glide_http_request_duration_seconds_count{endpoint=\"predict\"} 1",
        "glide_batch_size_bucket{model=\"m\",le=\"2\"} 1", "glide_queue_depth{model=\"other\"} 0",
        "glide_model_info{model=\"m\",version=\"1\",features=\"3000\",labels=\"400\"} 1",
        "# TYPE glide_batch_size histogram", "glide_time_seconds_total{stage=\"parse\"}"})
    CHECK_MESSAGE(r->body.find(s) != std::string::npos, s);
}

TEST_CASE("errors: JSON bodies with 400, 404, 405, 413") {
  const std::string path = temp_path("errors.glide");
  write_model(path, 3);
  ServerOptions options;
  options.max_body_bytes = 4096;
  TestServer server({{"m", path}}, {}, options);
  auto status_and_error = [](const httplib::Result& r) {
    REQUIRE(r);
    return std::make_pair(r->status, json::parse(r->body).value("error", std::string()));
  };
  auto [s1, e1] = status_and_error(post(server, "/v1/models/m:predict", "{\"instances\": [1,"));
  CHECK(s1 == 400);
  CHECK(e1.find("malformed JSON") == 0);
  auto [s2, e2] = status_and_error(post(
      server, "/v1/models/m:predict",
      R"({"instances": [{"indices": [1], "values": [1]}, {"indices": [2, 3000], "values": [1, 1]}]})"));
  CHECK(s2 == 400);
  CHECK(e2 == "instance 1: feature id 3000 is out of range (the model has 3000 features)");
  auto [s3, e3] = status_and_error(post(server, "/v1/models/nope:predict", "{}"));
  CHECK(s3 == 404);
  CHECK(e3.find("'nope'") != std::string::npos);
  auto [s4, e4] = status_and_error(server.client().Get("/v2/models/nope/ready"));
  CHECK(s4 == 404);
  auto [s5, e5] = status_and_error(server.client().Get("/no/such/path"));
  CHECK(s5 == 404);
  auto r = server.client().Get("/v1/models/m:predict");
  auto [s6, e6] = status_and_error(r);
  CHECK(s6 == 405);
  CHECK(r->get_header_value("Allow") == "POST");
  auto [s7, e7] = status_and_error(post(server, "/metrics", "{}"));
  CHECK(s7 == 405);
  auto [s8, e8] = status_and_error(
      post(server, "/v1/models/m:predict", predict_body(make_inputs(200, 3), 5).dump()));
  CHECK(s8 == 413);
  CHECK(!e8.empty());
  // The server still answers after all that.
  auto [s9, e9] = status_and_error(server.client().Get("/v2/health/live"));
  CHECK(s9 == 200);
  CHECK(eventually([&] {
    return server.metrics.requests("predict", 400) == 2 &&
           server.metrics.requests("predict", 413) == 1;
  }));
}

TEST_CASE("a full queue answers 503 with Retry-After") {
  const std::string path = temp_path("queue.glide");
  write_model(path, 4);
  Gate gate;
  BatcherOptions batching;
  batching.max_queue = 2;
  batching.max_batch = 1;
  batching.before_batch = [&] { gate.pass(); };
  TestServer server({{"m", path}}, batching);
  const std::string body = predict_body(make_inputs(1, 4), 2).dump();
  std::vector<std::thread> waiting;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 3; ++i) {
    waiting.emplace_back([&] {
      const auto r = post(server, "/v1/models/m:predict", body);
      ok += r && r->status == 200;
    });
    if (i == 0) REQUIRE(gate.wait_entered(1));  // the worker holds the first request
  }
  auto* model = server.registry->find("m");
  for (int spin = 0; spin < 1000 && model->batcher().queue_depth() < 2; ++spin)
    std::this_thread::sleep_for(5ms);
  REQUIRE(model->batcher().queue_depth() == 2);
  const auto r = post(server, "/v1/models/m:predict", body);
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->get_header_value("Retry-After") == "1");
  CHECK(json::parse(r->body)["error"].get<std::string>().find("full") != std::string::npos);
  gate.release();
  for (auto& t : waiting) t.join();
  CHECK(ok == 3);
}

TEST_CASE("concurrent clients get their own answers, batched and unbatched") {
  const std::string path = temp_path("concurrent.glide");
  write_model(path, 5);
  const engine::Predictor predictor(path, false);
  constexpr int kThreads = 8, kRequests = 50;
  const auto xs = make_inputs(kThreads * kRequests, 11);
  const auto want = expected(predictor, xs, 5);
  for (const std::size_t max_batch : {64, 1}) {
    CAPTURE(max_batch);
    BatcherOptions batching;
    batching.max_batch = max_batch;
    batching.max_delay = 2ms;
    TestServer server({{"m", path}}, batching);
    std::atomic<int> correct = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        auto c = server.client();
        c.set_keep_alive(true);
        c.set_tcp_nodelay(true);
        for (int i = 0; i < kRequests; ++i) {
          const std::size_t x = t * kRequests + i;
          const auto r =
              c.Post("/v1/models/m:predict", predict_body({xs[x]}, 5).dump(), "application/json");
          if (r && r->status == 200 && same(json::parse(r->body)["predictions"][0], want[x]))
            ++correct;
        }
      });
    for (auto& t : threads) t.join();
    CHECK(correct == kThreads * kRequests);
    const auto batched = server.metrics.multi_instance_batches("m");
    if (max_batch > 1)
      CHECK(batched > 0);
    else
      CHECK(batched == 0);
  }
}

TEST_CASE("64 clients connecting at once are all served") {
  // httplib's own listen backlog (5) would drop some of these connections.
  const std::string path = temp_path("burst.glide");
  write_model(path, 9);
  TestServer server({{"m", path}});
  const std::string body = predict_body(make_inputs(1, 2), 3).dump();
  std::atomic<int> ok = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t)
    threads.emplace_back([&] {
      auto c = server.client();
      c.set_keep_alive(true);
      for (int i = 0; i < 3; ++i) {
        const auto r = c.Post("/v1/models/m:predict", body, "application/json");
        ok += r && r->status == 200;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(ok == 64 * 3);
}

TEST_CASE(
    "learned caches over HTTP: cached field, metrics, a reload starts from the file's caches") {
  const std::string path = temp_path("cached.glide");
  write_model(path, 8);
  const auto xs = make_inputs(3, 31);
  const auto want = expected(engine::Predictor(path, false), xs, 5);
  cache::CachedOptions caching;
  caching.cache.min_examples = 64;
  caching.cache.publish_every = 16;
  caching.cache.hot_labels = 16;
  caching.shadow_fraction = 0;
  caching.initial_threshold = 0.6;
  BatcherOptions batching;
  batching.max_batch = 1;
  TestServer server({{"m", path}}, batching, {}, caching);
  int hits = 0, misses = 0, right = 0;
  for (int i = 0; i < 600; ++i) {
    const std::size_t x = i % xs.size();
    const auto r = post(server, "/v1/models/m:predict", predict_body({xs[x]}, 5).dump());
    REQUIRE(r);
    REQUIRE(r->status == 200);
    const json p = json::parse(r->body)["predictions"][0];
    REQUIRE(p.contains("cached"));
    if (p["cached"].is_null()) {
      ++misses;
      CHECK(same(p, want[x]));  // a miss is the full model's answer
    } else {
      CHECK(p["cached"] == 0);
      ++hits;
      right += p["labels"][0] == want[x].labels[0];
    }
  }
  MESSAGE("hits " << hits << ", misses " << misses);
  CHECK(hits > 100);
  CHECK(right == hits);
  const auto metrics = server.client().Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("glide_cache_hits_total{model=\"m\",layer=\"0\"} " +
                           std::to_string(hits)) != std::string::npos);
  CHECK(metrics->body.find("glide_cache_threshold{model=\"m\",layer=\"0\"}") != std::string::npos);
  ServedModel* m = server.registry->find("m");
  const auto before = m->current().cached;
  CHECK(before->stats()[0].examples > 0);
  m->reload();
  const auto after = m->current().cached;
  REQUIRE(after);
  CHECK(after != before);
  CHECK(after->stats()[0].examples == 0);
  CHECK(after->stats()[0].hits == 0);
  const auto r = post(server, "/v1/models/m:predict", predict_body({xs[0]}, 5).dump());
  REQUIRE(r);
  CHECK(json::parse(r->body)["predictions"][0]["cached"].is_null());  // cold again

  // The same weights saved with the warm caches: a reload starts from the file's caches.
  const cache::CacheStates warm = before->states();
  REQUIRE(warm.count(0));
  {
    const engine::LoadedModel lm = engine::load_model(path, false);
    cache::CacheSectionWriter sections;
    engine::SaveOptions so{false, 1, 1, {}};
    so.extra_sections = [&](engine::ModelFileWriter& w) { sections.add(w, warm); };
    engine::save_model(path, *lm.net, lm.config, lm.state, so);
  }
  m->reload();
  const auto loaded = m->current().cached;
  REQUIRE(loaded);
  CHECK(loaded != after);
  CHECK(loaded->stats()[0].examples == warm.at(0).model->examples);
  CHECK(loaded->threshold(0) == doctest::Approx(warm.at(0).threshold));
  int warm_hits = 0;
  for (std::size_t x = 0; x < xs.size(); ++x) {
    const auto w = post(server, "/v1/models/m:predict", predict_body({xs[x]}, 5).dump());
    REQUIRE(w);
    const json p = json::parse(w->body)["predictions"][0];
    if (p["cached"].is_null()) continue;
    ++warm_hits;
    CHECK(p["labels"][0] == want[x].labels[0]);
  }
  CHECK(warm_hits > 0);  // hits right after the reload, before any new example
}

TEST_CASE("reload under load drops no request; a damaged file keeps the old model") {
  const std::string path = temp_path("reload.glide"), a = temp_path("reload_a.glide"),
                    b = temp_path("reload_b.glide");
  write_model(a, 6);
  write_model(b, 7);
  std::filesystem::copy_file(a, path, std::filesystem::copy_options::overwrite_existing);
  const auto xs = make_inputs(16, 21);
  // Version 1 and every odd version is model a, even versions are b.
  const auto want_a = expected(engine::Predictor(a, false), xs, 5);
  const auto want_b = expected(engine::Predictor(b, false), xs, 5);
  BatcherOptions batching;
  batching.max_delay = 1ms;
  TestServer server({{"m", path}}, batching);

  std::atomic<bool> done = false;
  std::atomic<int> sent = 0, correct = 0;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t)
    load.emplace_back([&, t] {
      auto c = server.client();
      for (int i = 0; i < 400 && !done; ++i) {
        const std::size_t x = (t * 7 + i) % xs.size();
        ++sent;
        const auto r =
            c.Post("/v1/models/m:predict", predict_body({xs[x]}, 5).dump(), "application/json");
        if (!r || r->status != 200) continue;
        const int version = std::stoi(r->get_header_value("X-Glide-Model-Version"));
        const auto& want = version % 2 ? want_a[x] : want_b[x];
        correct += same(json::parse(r->body)["predictions"][0], want);
      }
    });
  for (int v = 2; v <= 5; ++v) {
    std::this_thread::sleep_for(30ms);
    std::filesystem::copy_file(v % 2 ? a : b, path + ".tmp",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(path + ".tmp", path);
    const auto r = post(server, "/v1/models/m:reload", "");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(json::parse(r->body)["version"] == std::to_string(v));
  }
  std::this_thread::sleep_for(30ms);
  done = true;
  for (auto& t : load) t.join();
  CHECK(sent > 0);
  CHECK(correct == sent);

  // Version 5 (model a) serves; now damage the file.
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "not a model";
  }
  auto r = post(server, "/v1/models/m:reload", "");
  REQUIRE(r);
  CHECK(r->status == 500);
  const std::string error = json::parse(r->body)["error"];
  CHECK(error.find("still serving version 5") != std::string::npos);
  CHECK(error.find(path) != std::string::npos);  // the loader names the file
  r = post(server, "/v1/models/m:predict", predict_body({xs[0]}, 5).dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  CHECK(same(json::parse(r->body)["predictions"][0], want_a[0]));
  CHECK(json::parse(
            server.client().Get("/v1/models/m")->body)["model_version_status"][0]["version"] ==
        "5");
}

TEST_CASE("stopping the server answers the requests in flight") {
  const std::string path = temp_path("shutdown.glide");
  write_model(path, 8);
  const engine::Predictor predictor(path, false);
  const auto xs = make_inputs(3, 5);
  const auto want = expected(predictor, xs, 5);
  Gate gate;
  BatcherOptions batching;
  batching.max_batch = 1;
  batching.before_batch = [&] { gate.pass(); };
  auto server = std::make_unique<TestServer>(std::vector<ModelSpec>{{"m", path}}, batching);
  std::atomic<int> correct = 0;
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i)
    clients.emplace_back([&, i] {
      const auto r = post(*server, "/v1/models/m:predict", predict_body({xs[i]}, 5).dump());
      if (r && r->status == 200) correct += same(json::parse(r->body)["predictions"][0], want[i]);
    });
  REQUIRE(gate.wait_entered(1));
  auto* model = server->registry->find("m");
  for (int spin = 0; spin < 1000 && model->batcher().queue_depth() < 2; ++spin)
    std::this_thread::sleep_for(5ms);
  std::thread stopper([&] { server->http->stop(); });
  std::this_thread::sleep_for(50ms);
  // Stopped accepting: a new connection is refused while the three are still held.
  auto late = httplib::Client("127.0.0.1", server->port);
  late.set_connection_timeout(1);
  CHECK(!late.Get("/v2/health/live"));
  gate.release();
  stopper.join();
  for (auto& t : clients) t.join();
  CHECK(correct == 3);
  server.reset();  // serve() returned: the destructor's join completes
}
