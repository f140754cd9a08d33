// The server end to end, in process on an ephemeral 127.0.0.1 port, through httplib clients:
// answers equal Predictor::predict, status and metrics endpoints, every error status, queue
// overflow, batching under concurrency. (Caches, reloads and shutdown: server_reload_test.cpp.)
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "server/tests/test_server.h"

using namespace glide;
using namespace glide::server;
using namespace glide::server::testing;
using nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("predictions over HTTP equal Predictor::predict (v1 and v2, exact and sampled)") {
  const std::string path = temp_path("equal.glide");
  write_model(path, 1);
  const engine::InferenceModel predictor(path, true);
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
  json infer = infer_body(xs, 5);
  infer["id"] = "q1";
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
  const engine::InferenceModel predictor(path, false);
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
