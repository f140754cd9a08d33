// The server end to end, continued: learned caches over HTTP (cached field, metrics, reload
// invalidation), hot reload under load and of a damaged file, graceful shutdown.
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "server/tests/test_server.h"

using namespace glide;
using namespace glide::server;
using namespace glide::server::testing;
using nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE(
    "learned caches over HTTP: cached field, metrics, a reload starts from the file's caches") {
  const std::string path = temp_path("cached.glide");
  write_model(path, 8);
  const auto xs = make_inputs(3, 31);
  const auto want = expected(engine::InferenceModel(path, false), xs, 5);
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
  // Skipping is off by default: nothing skipped. A cache with hits has saved time (the gross
  // counter; the running net saving's sign depends on the machine's timings) and reports a
  // running saving.
  CHECK(metrics->body.find("glide_cache_skipped_total{model=\"m\",layer=\"0\"} 0\n") !=
        std::string::npos);
  const auto saved =
      metrics->body.find("glide_cache_time_saved_seconds_total{model=\"m\",layer=\"0\"} ");
  REQUIRE(saved != std::string::npos);
  CHECK(std::stod(metrics->body.substr(saved + 58)) > 0);
  const auto saving = metrics->body.find("glide_cache_saving_seconds{model=\"m\",layer=\"0\"} ");
  REQUIRE(saving != std::string::npos);
  CHECK(std::isfinite(std::stod(metrics->body.substr(saving + 48))));
  // Sampled requests go through the same (now warm) caches.
  json sampled = predict_body(xs, 5);
  sampled["mode"] = "sampled";
  const auto rs = post(server, "/v1/models/m:predict", sampled.dump());
  REQUIRE(rs);
  REQUIRE(rs->status == 200);
  int sampled_hits = 0;
  const json sampled_answers = json::parse(rs->body)["predictions"];
  REQUIRE(sampled_answers.size() == xs.size());
  for (const json& p : sampled_answers) {
    REQUIRE(p.contains("cached"));
    sampled_hits += !p["cached"].is_null();
  }
  CHECK(sampled_hits > 0);
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
  const auto want_a = expected(engine::InferenceModel(a, false), xs, 5);
  const auto want_b = expected(engine::InferenceModel(b, false), xs, 5);
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
  const engine::InferenceModel predictor(path, false);
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
