// The protocols' finer points end to end (in process, 127.0.0.1): KServe v2 shapes and requested
// outputs, versioned paths, TF Serving's columnar inputs and metadata, unknown keys, HEAD, and
// the metrics a scraper relies on (counters never decrease, build and process info).
#include <doctest/doctest.h>
#include <httplib.h>

#include <sys/resource.h>

#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include "server/tests/test_server.h"

using namespace glide;
using namespace glide::server;
using namespace glide::server::testing;
using nlohmann::json;

namespace {

std::string error_of(const httplib::Result& r) {
  return json::parse(r->body).value("error", std::string());
}

// Every sample of a /metrics body: "name{labels}" -> value.
std::map<std::string, double> samples(const std::string& body) {
  std::map<std::string, double> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

}  // namespace

TEST_CASE("KServe v2: shapes are checked against the data, outputs asked for are the ones sent") {
  const std::string path = temp_path("proto_v2.glide");
  write_model(path, 11);
  const engine::InferenceModel model(path, false);
  TestServer server({{"m", path}});
  const auto xs = make_inputs(3, 5);
  const auto want = expected(model, xs, 4);

  json body = infer_body(xs, 4);
  body["inputs"][0]["shape"] = {1, body["inputs"][0]["data"].size()};
  auto r = post(server, "/v2/models/m/infer", body.dump());
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(error_of(r).find("input \"indices\": shape [1,") == 0);
  body = infer_body(xs, 4);
  body["inputs"][1]["shape"] = {body["inputs"][1]["data"].size() + 1};
  r = post(server, "/v2/models/m/infer", body.dump());
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(error_of(r).find("input \"values\": shape") == 0);
  body["inputs"][1]["shape"] = {-1};
  r = post(server, "/v2/models/m/infer", body.dump());
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(error_of(r) == "input \"values\": shape [-1] must hold non-negative integers");

  body = infer_body(xs, 4);
  body["outputs"] = {{{"name", "scores"}}};
  r = post(server, "/v2/models/m/infer", body.dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  const json only = json::parse(r->body)["outputs"];
  REQUIRE(only.size() == 1);
  CHECK(only[0]["name"] == "scores");
  const auto scores = only[0]["data"].get<std::vector<float>>();
  for (std::size_t i = 0; i < xs.size(); ++i)
    CHECK(close(std::vector(scores.begin() + 4 * i, scores.begin() + 4 * i + 4), want[i].scores));
  body["outputs"] = {{{"name", "labels"}}, {{"name", "logits"}}};
  r = post(server, "/v2/models/m/infer", body.dump());
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(error_of(r) == "outputs: unknown output \"logits\" (known: labels, scores)");
}

TEST_CASE("versioned paths answer for the version served and 404 for any other") {
  const std::string path = temp_path("proto_versions.glide");
  write_model(path, 12);
  TestServer server({{"m", path}});
  const auto xs = make_inputs(2, 6);
  auto c = server.client();
  for (const char* p : {"/v1/models/m/versions/1", "/v1/models/m/versions/1/metadata",
                        "/v2/models/m/versions/1", "/v2/models/m/versions/1/ready"}) {
    const auto r = c.Get(p);
    REQUIRE(r);
    CHECK_MESSAGE(r->status == 200, p);
  }
  auto r = post(server, "/v1/models/m/versions/1:predict", predict_body(xs, 3).dump());
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(json::parse(r->body)["predictions"].size() == 2);
  r = post(server, "/v2/models/m/versions/1/infer", infer_body(xs, 3).dump());
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(json::parse(r->body)["model_version"] == "1");

  const std::string wrong = "model 'm' has no version '2' (versions served: 1)";
  r = post(server, "/v1/models/m/versions/2:predict", predict_body(xs, 3).dump());
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(error_of(r) == wrong);
  r = post(server, "/v2/models/m/versions/2/infer", infer_body(xs, 3).dump());
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(error_of(r) == wrong);
  for (const char* p :
       {"/v1/models/m/versions/2", "/v2/models/m/versions/2/ready", "/v2/models/m/versions/x"}) {
    const auto g = c.Get(p);
    REQUIRE(g);
    CHECK_MESSAGE(g->status == 404, p);
  }
  // After a reload the served version is 2: the old number is gone.
  server.registry->find("m")->reload();
  r = post(server, "/v2/models/m/versions/2/infer", infer_body(xs, 3).dump());
  REQUIRE(r);
  CHECK(r->status == 200);
  r = post(server, "/v2/models/m/versions/1/infer", infer_body(xs, 3).dump());
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(error_of(r) == "model 'm' has no version '1' (versions served: 2)");
}

TEST_CASE("TF Serving: columnar inputs answer like the same instances") {
  const std::string path = temp_path("proto_tfs.glide");
  write_model(path, 13);
  const engine::InferenceModel model(path, false);
  TestServer server({{"m", path}});
  const auto xs = make_inputs(3, 8);
  const auto want = expected(model, xs, 5);
  json indices = json::array(), values = json::array();
  for (const auto& x : xs) {
    indices.push_back(x.ids);
    values.push_back(x.values);
  }
  auto r = post(server, "/v1/models/m:predict",
                json{{"inputs", {{"indices", indices}, {"values", values}}}, {"k", 5}}.dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  const json got = json::parse(r->body)["predictions"];
  REQUIRE(got.size() == xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(same(got[i], want[i]));
}

TEST_CASE("TF Serving metadata has signature_def and never the file's path") {
  const std::string path = temp_path("proto_tfs_meta.glide");
  write_model(path, 18);
  TestServer server({{"m", path}});
  const auto r = server.client().Get("/v1/models/m/metadata");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  const json meta = json::parse(r->body);
  const json& sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"];
  CHECK(sig["method_name"] == "tensorflow/serving/predict");
  CHECK(sig["inputs"].contains("indices"));
  CHECK(sig["inputs"].contains("values"));
  CHECK(sig["outputs"]["scores"]["dtype"] == "DT_FLOAT");
  CHECK(!meta["metadata"].contains("path"));
  CHECK(r->body.find(path) == std::string::npos);  // where the file lives is not told
  CHECK(r->body.find("glide_server_test") == std::string::npos);
}

TEST_CASE("unknown request keys are 400s naming the key (v1 and v2)") {
  const std::string path = temp_path("proto_keys.glide");
  write_model(path, 14);
  TestServer server({{"m", path}});
  const auto xs = make_inputs(1, 9);
  json v1 = predict_body(xs, 3);
  v1["topk"] = 2;
  auto r = post(server, "/v1/models/m:predict", v1.dump());
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(error_of(r).find("unknown key \"topk\"") == 0);
  json v2 = infer_body(xs, 3);
  v2["parameters"]["topk"] = 2;
  r = post(server, "/v2/models/m/infer", v2.dump());
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(error_of(r).find("parameters: unknown key \"topk\"") == 0);
}

TEST_CASE("HEAD on a GET route answers GET's status and headers without a body") {
  const std::string path = temp_path("proto_head.glide");
  write_model(path, 15);
  TestServer server({{"m", path}});
  auto c = server.client();
  for (const char* p : {"/v1/models/m", "/v1/models/m/metadata", "/v2/models/m", "/v2",
                        "/v2/health/live", "/v2/models/m/ready"}) {
    const auto get = c.Get(p);
    const auto head = c.Head(p);
    REQUIRE(get);
    REQUIRE(head);
    CHECK_MESSAGE(head->status == 200, p);
    CHECK_MESSAGE(head->body.empty(), p);
    CHECK_MESSAGE(head->get_header_value("Content-Type") == get->get_header_value("Content-Type"),
                  p);
    CHECK_MESSAGE(head->get_header_value("Content-Length") == std::to_string(get->body.size()), p);
  }
  const auto head = c.Head("/metrics");
  REQUIRE(head);
  CHECK(head->status == 200);
  const auto post_route = c.Head("/v1/models/m:predict");
  REQUIRE(post_route);
  CHECK(post_route->status == 405);
  CHECK(post_route->get_header_value("Allow") == "POST");
  const auto wrong = c.Post("/v2/models/m", "", "application/json");
  REQUIRE(wrong);
  CHECK(wrong->status == 405);
  CHECK(wrong->get_header_value("Allow") == "GET, HEAD");
}

TEST_CASE("metrics: cache counters never decrease, agreement only after checks") {
  const std::string path = temp_path("proto_metrics.glide");
  write_model(path, 16);
  cache::CachedOptions caching;
  caching.cache.min_examples = 64;
  caching.cache.publish_every = 16;
  caching.cache.hot_labels = 16;
  caching.shadow_fraction = 0;  // no shadow checks
  caching.initial_threshold = 0.6;
  BatcherOptions batching;
  batching.max_batch = 1;
  TestServer server({{"m", path}}, batching, {}, caching);
  const auto xs = make_inputs(3, 10);
  auto scrape = [&] {
    const auto r = server.client().Get("/metrics");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return r->body;
  };
  // Misses only at first (a cold cache): lookups cost time and save none.
  for (int i = 0; i < 20; ++i)
    REQUIRE(post(server, "/v1/models/m:predict", predict_body({xs[i % 3]}, 5).dump())->status ==
            200);
  const std::string first = scrape();
  for (int i = 0; i < 300; ++i)
    REQUIRE(post(server, "/v1/models/m:predict", predict_body({xs[i % 3]}, 5).dump())->status ==
            200);
  const std::string second = scrape();
  const auto before = samples(first), after = samples(second);
  REQUIRE(after.count("glide_cache_hits_total{model=\"m\",layer=\"0\"}"));
  CHECK(after.at("glide_cache_hits_total{model=\"m\",layer=\"0\"}") > 0);
  for (const auto& [name, value] : before) {
    if (name.find("_total") == std::string::npos) continue;
    CHECK_MESSAGE(value >= 0, name);
    REQUIRE_MESSAGE(after.count(name), name);
    CHECK_MESSAGE(after.at(name) >= value, name);
  }
  CHECK(second.find("glide_cache_saved_seconds_total") == std::string::npos);
  CHECK(after.count("glide_cache_time_saved_seconds_total{model=\"m\",layer=\"0\"}"));
  CHECK(after.count("glide_cache_lookup_seconds_total{model=\"m\",layer=\"0\"}"));
  // No shadow checks, so no agreement to report (not a perfect 1).
  CHECK(after.at("glide_cache_shadow_checks_total{model=\"m\",layer=\"0\"}") == 0);
  CHECK(!after.count("glide_cache_shadow_agreement{model=\"m\",layer=\"0\"}"));
}

TEST_CASE("metrics: build info and the process's memory, descriptors, CPU and start time") {
  const std::string path = temp_path("proto_process.glide");
  write_model(path, 19);
  TestServer server({{"m", path}});
  const auto r = server.client().Get("/metrics");
  REQUIRE(r);
  const auto after = samples(r->body);
  CHECK(after.count("glide_build_info{version=\"" GLIDE_TEST_VERSION "\"}"));
  CHECK(after.at("glide_build_info{version=\"" GLIDE_TEST_VERSION "\"}") == 1);
  rusage usage{};
  REQUIRE(getrusage(RUSAGE_SELF, &usage) == 0);
  const double rss = after.at("process_resident_memory_bytes");
  CHECK(rss > 0);
  // The peak so far (VmHWM, which the kernel brings up to date when it is read) is at least
  // the resident size at the scrape.
  std::ifstream status("/proc/self/status");
  std::string key;
  double peak_kb = 0;
  while (status >> key)
    if (key == "VmHWM:" && status >> peak_kb) break;
  CHECK(rss <= peak_kb * 1024);
  const double cpu = after.at("process_cpu_seconds_total");
  CHECK(cpu > 0);
  CHECK(cpu <= double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + 2);  // tick rounding
  CHECK(after.at("process_open_fds") >= 3);  // stdin, stdout, stderr at least
  CHECK(after.at("process_start_time_seconds") <= double(std::time(nullptr)) + 1);
  CHECK(after.at("process_start_time_seconds") > 1.5e9);
}

TEST_CASE("metrics: a cache that mostly misses has no negative counter") {
  const std::string path = temp_path("proto_misses.glide");
  write_model(path, 17);
  cache::CachedOptions caching;
  caching.cache.min_examples = 16;
  caching.cache.publish_every = 16;
  caching.cache.hot_labels = 1;  // the one label of the input it learns from
  caching.shadow_fraction = 0;
  BatcherOptions batching;
  batching.max_batch = 1;
  TestServer server({{"m", path}}, batching, {}, caching);
  const auto learned = make_inputs(1, 12);
  for (int i = 0; i < 40; ++i)
    REQUIRE(post(server, "/v1/models/m:predict", predict_body(learned, 5).dump())->status == 200);
  // Other inputs: looked up, and (their best label not the hot one) missed, costing lookup
  // time without saving any.
  const auto others = make_inputs(100, 13);
  for (const auto& x : others)
    REQUIRE(post(server, "/v1/models/m:predict", predict_body({x}, 5).dump())->status == 200);
  const auto r = server.client().Get("/metrics");
  REQUIRE(r);
  const auto all = samples(r->body);
  const std::string layer = "{model=\"m\",layer=\"0\"}";
  REQUIRE(all.count("glide_cache_misses_total" + layer));
  MESSAGE("hits " << all.at("glide_cache_hits_total" + layer) << ", misses "
                  << all.at("glide_cache_misses_total" + layer));
  CHECK(all.at("glide_cache_misses_total" + layer) > 0);
  CHECK(all.at("glide_cache_lookup_seconds_total" + layer) > 0);
  for (const auto& [name, value] : all)
    if (name.find("_total") != std::string::npos) CHECK_MESSAGE(value >= 0, name);
}
