// What the server's end-to-end tests share: a small model file, inputs, the expected answers, a
// server in process on an ephemeral 127.0.0.1 port, and a gate that holds its batcher.
#pragma once
#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/checkpoint.h"
#include "engine/predictor.h"
#include "server/http_server.h"

namespace glide::server::testing {

using nlohmann::json;
using namespace std::chrono_literals;

inline constexpr std::uint32_t kFeatures = 3000, kLabels = 400;

inline std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "glide_server_test";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// A small untrained model (random weights answer deterministically, which is all we compare);
// tiny LSH tables so sampled mode is cheap.
inline void write_model(const std::string& path, std::uint64_t seed) {
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

inline std::vector<Input> make_inputs(std::size_t n, std::uint64_t seed) {
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

inline std::vector<engine::Prediction> expected(const engine::InferenceModel& p,
                                                const std::vector<Input>& xs, std::uint32_t k,
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
inline bool close(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i] - b[i]) > 1e-5f * std::max(std::abs(a[i]), std::abs(b[i])) + 1e-30f)
      return false;
  return true;
}

inline bool same(const json& got, const engine::Prediction& want) {
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

inline httplib::Result post(const TestServer& s, const std::string& path, const std::string& body) {
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

inline json predict_body(const std::vector<Input>& xs, std::uint32_t k) {
  json instances = json::array();
  for (const auto& x : xs) instances.push_back(x.as_json());
  return {{"instances", instances}, {"k", k}};
}

// A KServe v2 infer body of `xs` (indices, values, offsets tensors), top k.
inline json infer_body(const std::vector<Input>& xs, std::uint32_t k) {
  std::vector<std::uint32_t> ids;
  std::vector<float> values;
  std::vector<std::uint64_t> offsets{0};
  for (const auto& x : xs) {
    ids.insert(ids.end(), x.ids.begin(), x.ids.end());
    values.insert(values.end(), x.values.begin(), x.values.end());
    offsets.push_back(ids.size());
  }
  return {
      {"parameters", {{"k", k}}},
      {"inputs",
       {{{"name", "indices"}, {"datatype", "INT32"}, {"shape", {ids.size()}}, {"data", ids}},
        {{"name", "values"}, {"datatype", "FP32"}, {"shape", {values.size()}}, {"data", values}},
        {{"name", "offsets"},
         {"datatype", "INT64"},
         {"shape", {offsets.size()}},
         {"data", offsets}}}}};
}

}  // namespace glide::server::testing
