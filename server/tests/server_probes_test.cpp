// The probes knob of sampled mode over HTTP, on a model file with an output index: a request's
// "probes" (v1 field, v2 parameter) and the server's default reach the predictor, requests with
// different probes batched together each get their own answer, and bad values are 400s naming
// the field.
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "engine/model_file.h"
#include "engine/output_index.h"
#include "server/tests/test_server.h"

using namespace glide;
using namespace glide::server;
using namespace glide::server::testing;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// write_model's model with an output index built from 1600 random inputs with random labels.
// The clusters hold only those labels (no predicted ones), so one probe finds few of the exact
// top labels and the answer depends visibly on probes.
void write_indexed_model(const std::string& path) {
  engine::Config c;
  c.net.num_features = kFeatures;
  c.net.num_labels = kLabels;
  c.net.hidden = {32};
  c.net.seed = 21;
  c.net.sparsity = 0.1;
  c.net.lsh.L = 4;
  c.net.lsh.range_pow = 8;
  engine::Network net(c.net);
  data::Dataset train;
  train.num_features = kFeatures;
  train.num_labels = kLabels;
  std::mt19937_64 rng(5);
  for (const Input& x : make_inputs(1600, 99)) {
    const std::uint32_t label = static_cast<std::uint32_t>(rng() % kLabels);
    train.add_point(x.ids, x.values, {&label, 1});
  }
  engine::OutputIndexOptions io;
  io.predicted = 0;
  const auto index = engine::OutputIndex::build(net, train, io);
  engine::SaveOptions so{false, 1, 1, [&](engine::ModelFileWriter& w) { index->save(w); }};
  engine::save_model(path, net, c, {}, so);
}

// Sampled predictions of `xs` one at a time with `probes` (0: the model's default).
std::vector<engine::Prediction> sampled(const engine::InferenceModel& model,
                                        const std::vector<Input>& xs, std::uint32_t k,
                                        std::uint32_t probes) {
  std::vector<engine::Prediction> out;
  for (const auto& x : xs) {
    std::vector<engine::Prediction> one;
    const data::SparseView v = x.view();
    model.predict({&v, 1}, k, engine::EvalMode::kSampled, one, {.probes = probes});
    out.push_back(one[0]);
  }
  return out;
}

json sampled_body(const std::vector<Input>& xs, std::uint32_t k, std::uint32_t probes) {
  json body = predict_body(xs, k);
  body["mode"] = "sampled";
  if (probes) body["probes"] = probes;
  return body;
}

// How many of `got` (a v1 answer's predictions) equal `want`.
std::size_t agreeing(const json& got, const std::vector<engine::Prediction>& want) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < want.size(); ++i) n += same(got[i], want[i]);
  return n;
}

// How many inputs get different labels from `a` and `b`.
std::size_t differing(const std::vector<engine::Prediction>& a,
                      const std::vector<engine::Prediction>& b) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += a[i].labels != b[i].labels;
  return n;
}

}  // namespace

TEST_CASE("a request's probes and the server's default reach the index (v1 and v2)") {
  const std::string path = temp_path("probes.glide");
  write_indexed_model(path);
  const engine::InferenceModel model(path, true);
  const auto xs = make_inputs(12, 7);
  const auto one = sampled(model, xs, 5, 1), many = sampled(model, xs, 5, 64),
             fallback = sampled(model, xs, 5, 0);
  // The answers depend on probes (else nothing below could fail).
  REQUIRE(differing(one, many) > 0);
  REQUIRE(differing(one, fallback) > 0);

  TestServer server({{"m", path}});
  for (const std::uint32_t probes : {1u, 64u}) {
    CAPTURE(probes);
    const auto& want = probes == 1 ? one : many;
    auto r = post(server, "/v1/models/m:predict", sampled_body(xs, 5, probes).dump());
    REQUIRE(r);
    REQUIRE(r->status == 200);
    CHECK(agreeing(json::parse(r->body)["predictions"], want) == xs.size());

    json infer = infer_body(xs, 5);
    infer["parameters"]["mode"] = "sampled";
    infer["parameters"]["probes"] = probes;
    r = post(server, "/v2/models/m/infer", infer.dump());
    REQUIRE(r);
    REQUIRE(r->status == 200);
    const auto labels = json::parse(r->body)["outputs"][0]["data"].get<std::vector<std::int64_t>>();
    std::size_t equal = 0;
    for (std::size_t i = 0; i < xs.size(); ++i)
      equal += std::equal(want[i].labels.begin(), want[i].labels.end(), labels.begin() + 5 * i);
    CHECK(equal == xs.size());
  }
  // Without "probes": the model's default.
  auto r = post(server, "/v1/models/m:predict", sampled_body(xs, 5, 0).dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  CHECK(agreeing(json::parse(r->body)["predictions"], fallback) == xs.size());
  // The metadata says sampled mode searches an index.
  r = server.client().Get("/v1/models/m/metadata");
  REQUIRE(r);
  CHECK(json::parse(r->body)["metadata"]["shapes"]["sampled_search"] == "index");

  // `glide serve --probes 1`: requests that do not say get 1 probe; those that do, theirs.
  ServerOptions options;
  options.probes = 1;
  TestServer narrow({{"m", path}}, {}, options);
  r = post(narrow, "/v1/models/m:predict", sampled_body(xs, 5, 0).dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  CHECK(agreeing(json::parse(r->body)["predictions"], one) == xs.size());
  r = post(narrow, "/v1/models/m:predict", sampled_body(xs, 5, 64).dump());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  CHECK(agreeing(json::parse(r->body)["predictions"], many) == xs.size());
}

TEST_CASE("requests queued together with different probes each get their own answer") {
  const std::string path = temp_path("probes_batch.glide");
  write_indexed_model(path);
  const engine::InferenceModel model(path, true);
  const auto xs = make_inputs(7, 17);
  const auto one = sampled(model, xs, 5, 1), many = sampled(model, xs, 5, 64);
  REQUIRE(differing(one, many) > 0);

  Gate gate;
  BatcherOptions batching;
  batching.max_batch = 64;
  batching.before_batch = [&] { gate.pass(); };
  TestServer server({{"m", path}}, batching);
  // Request i asks for xs[i]: the first alone holds the worker; then three with 1 probe and
  // three with 64 queue up, interleaved, and two exact ones whose probes differ (exact mode
  // ignores probes, so they batch together).
  std::vector<std::thread> clients;
  std::atomic<int> correct = 0;
  auto send = [&](std::size_t i, std::uint32_t probes) {
    clients.emplace_back([&, i, probes] {
      const auto r = post(server, "/v1/models/m:predict", sampled_body({xs[i]}, 5, probes).dump());
      const auto& want = probes == 1 ? one : many;
      if (r && r->status == 200 && same(json::parse(r->body)["predictions"][0], want[i])) ++correct;
    });
  };
  send(0, 1);
  REQUIRE(gate.wait_entered(1));
  for (std::size_t i = 1; i < 7; ++i) send(i, i % 2 ? 1 : 64);
  std::atomic<int> exact_ok = 0;
  for (const std::uint32_t probes : {3u, 7u})
    clients.emplace_back([&, probes] {
      json body = predict_body({xs[0]}, 5);
      body["probes"] = probes;
      const auto r = post(server, "/v1/models/m:predict", body.dump());
      exact_ok += r && r->status == 200;
    });
  auto& batcher = server.registry->find("m")->batcher();
  REQUIRE(eventually([&] { return batcher.queue_depth() == 8; }));
  gate.release();
  for (auto& t : clients) t.join();
  CHECK(correct == 7);
  CHECK(exact_ok == 2);
  // The held one, then one batch per (mode, probes): 1 probe, 64 probes, exact.
  CHECK(server.metrics.time_split().batches == 4);
}

TEST_CASE("a sampled request does not wait for company; an exact one does") {
  const std::string path = temp_path("probes_nowait.glide");
  write_indexed_model(path);
  BatcherOptions batching;
  batching.max_batch = 64;
  batching.max_delay = std::chrono::seconds(30);  // a wait would be unmistakable
  TestServer server({{"m", path}}, batching);
  const auto xs = make_inputs(1, 23);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = post(server, "/v1/models/m:predict", sampled_body({xs[0]}, 5, 4).dump());
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < 20s);
  // An exact request still waits for company: it is queued, not yet answered, after a moment.
  std::thread exact(
      [&] { (void)post(server, "/v1/models/m:predict", predict_body({xs[0]}, 5).dump()); });
  auto& batcher = server.registry->find("m")->batcher();
  CHECK(eventually([&] { return batcher.queue_depth() == 1; }));
  CHECK(server.metrics.time_split().batches == 1);  // only the sampled one ran
  server.registry->stop();                          // stopping runs what is queued at once
  exact.join();
}

TEST_CASE("bad probes are 400s naming the field (v1 and v2)") {
  const std::string path = temp_path("probes_bad.glide");
  write_model(path, 3);
  TestServer server({{"m", path}});
  const auto xs = make_inputs(1, 3);
  for (const json& bad : {json(0), json(-1), json("x"), json(2.5), json(1 << 21)}) {
    CAPTURE(bad.dump());
    json body = predict_body(xs, 5);
    body["probes"] = bad;
    auto r = post(server, "/v1/models/m:predict", body.dump());
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(json::parse(r->body)["error"].get<std::string>().find("probes") == 0);
    json infer = infer_body(xs, 5);
    infer["parameters"]["probes"] = bad;
    r = post(server, "/v2/models/m/infer", infer.dump());
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(json::parse(r->body)["error"].get<std::string>().find("probes") == 0);
  }
}
