#include "server/http_server.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "common/timing.h"
#include "engine/config.h"
#include "engine/index_predictor.h"
#include "server/request_parser.h"
#include "server/response_writer.h"
#include "server/routes.h"

namespace glide::server {

namespace {

constexpr const char* kJson = "application/json";

void send_error(HttpResponse& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(write_error(message), kJson);
}

HttpResponse error_response(int status, const std::string& message) {
  HttpResponse res;
  send_error(res, status, message);
  return res;
}

const char* default_message(int status) {
  switch (status) {
    case 400:
      return "malformed HTTP request";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 408:
      return "request timeout";
    case 413:
      return "request body too large";
    case 414:
      return "request URI too long";
    case 431:
      return "request header fields too large";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal server error" : "request failed";
  }
}

nlohmann::json model_shapes(const engine::InferenceModel& p) {
  const auto& net = p.config().net;
  // What sampled mode searches: the model file's output index (where "probes" apply) or LSH
  // tables; null without sampled mode.
  nlohmann::json search = nullptr;
  if (p.has_sampled())
    search = dynamic_cast<const engine::IndexPredictor*>(&p.predictor(engine::EvalMode::kSampled))
                 ? "index"
                 : "lsh";
  return {{"num_features", net.num_features},
          {"num_labels", net.num_labels},
          {"hidden", net.hidden},
          {"sampled_mode", p.has_sampled()},
          {"sampled_search", search}};
}

// The one signature of a TF Serving SignatureDefMap, "serving_default", in its JSON form:
// batches of sparse vectors in, k labels and scores per instance out (-1: any size).
nlohmann::json signature_def() {
  auto tensor = [](const char* name, const char* dtype) {
    return nlohmann::json{
        {"dtype", dtype},
        {"tensor_shape",
         {{"dim", {{{"size", "-1"}, {"name", ""}}, {{"size", "-1"}, {"name", ""}}}},
          {"unknown_rank", false}}},
        {"name", name}};
  };
  nlohmann::json serving_default = {
      {"inputs",
       {{"indices", tensor("indices", "DT_INT64")}, {"values", tensor("values", "DT_FLOAT")}}},
      {"outputs",
       {{"labels", tensor("labels", "DT_INT32")}, {"scores", tensor("scores", "DT_FLOAT")}}},
      {"method_name", "tensorflow/serving/predict"}};
  return {{"signature_def", {{"serving_default", serving_default}}}};
}

}  // namespace

void log_line(const std::string& message) {
  std::fprintf(stderr, "glide serve: %s\n", message.c_str());
}

HttpServer::HttpServer(ModelRegistry& registry, Metrics& metrics, ServerOptions options)
    : registry_(registry), metrics_(metrics), options_(std::move(options)) {
  // Answers are sent with MSG_NOSIGNAL; this also keeps a client hanging up from killing the
  // process through any other write to a socket.
  std::signal(SIGPIPE, SIG_IGN);
  LoopOptions loop;
  loop.limits.max_body_bytes = options_.max_body_bytes;
  loop.worker_threads = std::max<std::size_t>(1, options_.http_threads);
  loop.header_timeout_seconds = options_.header_timeout_seconds;
  loop.body_timeout_seconds = options_.body_timeout_seconds;
  loop.keep_alive_seconds = options_.keep_alive_seconds;
  loop.max_connections = std::max<std::size_t>(1, options_.max_connections);
  loop.max_receiving_bytes = options_.max_receiving_bytes;
  LoopCallbacks callbacks;
  callbacks.handle = [this](const HttpRequest& request) {
    HttpResponse response;
    route(request, response);
    return response;
  };
  callbacks.error = [this](int status, const std::string& message) {
    if (status == 413)
      return error_response(413, "the request body is larger than " +
                                     std::to_string(options_.max_body_bytes) +
                                     " bytes (--max-body-bytes)");
    return error_response(status, message.empty() ? default_message(status) : message);
  };
  callbacks.answered = [this](const HttpRequest& request, int status, double seconds) {
    metrics_.count_request(endpoint_name(match_route(request.path).endpoint), status, seconds);
    if (options_.access_log) {
      char line[96];
      std::snprintf(line, sizeof line, " %d %.3f ms", status, seconds * 1e3);
      log_line((request.method.empty() ? "-" : request.method) + " " +
               (request.path.empty() ? "-" : request.path) + line);
    }
  };
  loop_ = std::make_unique<ConnectionLoop>(loop, std::move(callbacks));
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  // The kernel would take a port's low 16 bits: 70000 would listen on 4464.
  if (options_.port < 0 || options_.port > 65535)
    fail("port " + std::to_string(options_.port), "is not a TCP port (0-65535)");
  port_ = loop_->listen(options_.host, options_.port);
  if (port_ < 0) {
    if (options_.port == 0) fail(options_.host, "cannot bind a port");
    fail(options_.host + ":" + std::to_string(options_.port),
         "cannot bind (in use, or not an address of this machine)");
  }
  return port_;
}

void HttpServer::serve() {
  if (stopping_) return;
  loop_->run();
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  loop_->stop();
}

bool HttpServer::ready() const {
  return !stopping_;
}

std::size_t HttpServer::open_connections() const {
  return loop_->open_connections();
}

std::size_t HttpServer::receiving_bytes() const {
  return loop_->receiving_bytes();
}

void HttpServer::route(const HttpRequest& req, HttpResponse& res) {
  const std::string& body = req.body;
  const Route route = match_route(req.path);
  if (route.endpoint == Endpoint::kUnknown) return send_error(res, 404, "no endpoint " + req.path);
  // HEAD is GET without the body (the connection loop sends only the head of the answer).
  const bool get_route = std::string_view(route.method) == "GET";
  if (req.method != route.method && !(get_route && req.method == "HEAD")) {
    const std::string allowed = get_route ? "GET, HEAD" : route.method;
    res.set_header("Allow", allowed);
    return send_error(res, 405,
                      req.method + " is not allowed on " + req.path + " (use " + allowed + ")");
  }
  ServedModel* model = nullptr;
  if (!route.model.empty()) {
    model = registry_.find(route.model);
    if (!model)
      return send_error(
          res, 404,
          "model '" + route.model + "' is not served (models: " + registry_.names() + ")");
  }
  // A path naming a version must name the one served (one version at a time).
  auto wrong_version = [&](std::uint64_t served) {
    if (route.version.empty() || route.version == std::to_string(served)) return false;
    send_error(res, 404,
               "model '" + route.model + "' has no version '" + route.version +
                   "' (versions served: " + std::to_string(served) + ")");
    return true;
  };
  if (model && wrong_version(model->current().version)) return;
  switch (route.endpoint) {
    case Endpoint::kPredict:
    case Endpoint::kInfer: {
      const ModelSnapshot snapshot = model->current();
      const auto& net = snapshot.model->config().net;
      const InputLimits limits{.num_features = net.num_features,
                               .num_labels = net.num_labels,
                               .default_k = 5,
                               .max_k = options_.max_k,
                               .max_labels = options_.max_response_labels,
                               .default_probes = options_.probes};
      const auto t0 = Clock::now();
      ParsedRequest parsed;
      try {
        parsed = route.endpoint == Endpoint::kPredict ? parse_predict_request(body, limits)
                                                      : parse_infer_request(body, limits);
      } catch (const RequestError& e) {
        metrics_.add_parse_seconds(seconds_since(t0));
        return send_error(res, 400, e.what());
      }
      metrics_.add_parse_seconds(seconds_since(t0));
      const std::uint32_t k = parsed.k;
      const bool want_labels = parsed.want_labels, want_scores = parsed.want_scores;
      std::string id = std::move(parsed.id);
      std::future<BatchResult> future;
      try {
        future = model->batcher().submit(std::move(parsed));
      } catch (const QueueFullError& e) {
        res.set_header("Retry-After", "1");
        return send_error(res, 503, e.what());
      }
      BatchResult result = future.get();
      if (result.status != 200) return send_error(res, result.status, result.error);
      if (wrong_version(result.version)) return;  // a reload replaced it meanwhile
      const auto t1 = Clock::now();
      res.set_header("X-Glide-Model-Version", std::to_string(result.version));
      res.set_content(route.endpoint == Endpoint::kPredict
                          ? write_predict_response(result.predictions, result.cached)
                          : write_infer_response(route.model, result.version, id, k,
                                                 result.predictions, want_labels, want_scores),
                      kJson);
      metrics_.add_write_seconds(seconds_since(t1));
      return;
    }
    case Endpoint::kReload: {
      try {
        const auto version = model->reload();
        log_line("reloaded model '" + route.model + "' from " + model->path() + ": version " +
                 std::to_string(version));
        nlohmann::json body = {{"model", route.model}, {"version", std::to_string(version)}};
        return res.set_content(body.dump(), kJson);
      } catch (const Error& e) {
        log_line(std::string("error: ") + e.what());
        return send_error(res, 500, e.what());
      }
    }
    case Endpoint::kModelStatus: {
      nlohmann::json body = {{"model_version_status",
                              {{{"version", std::to_string(model->current().version)},
                                {"state", "AVAILABLE"},
                                {"status", {{"error_code", "OK"}, {"error_message", ""}}}}}}};
      return res.set_content(body.dump(), kJson);
    }
    case Endpoint::kModelMetadata: {
      const ModelSnapshot s = model->current();
      // TF Serving's GetModelMetadata answer plus glide's shapes and config. Never the
      // file's path: where the server keeps its files is none of a client's business.
      nlohmann::json body = {
          {"model_spec",
           {{"name", route.model}, {"signature_name", ""}, {"version", std::to_string(s.version)}}},
          {"metadata",
           {{"signature_def", signature_def()},
            {"shapes", model_shapes(*s.model)},
            {"config", nlohmann::json::parse(engine::to_json(s.model->config()))}}}};
      return res.set_content(body.dump(), kJson);
    }
    case Endpoint::kV2Model: {
      const ModelSnapshot s = model->current();
      auto tensor = [](const char* name, const char* type, nlohmann::json shape) {
        return nlohmann::json{{"name", name}, {"datatype", type}, {"shape", shape}};
      };
      nlohmann::json body = {
          {"name", route.model},
          {"versions", {std::to_string(s.version)}},
          {"platform", "glide"},
          {"inputs",
           {tensor("indices", "INT32", {-1}), tensor("values", "FP32", {-1}),
            tensor("offsets", "INT64", {-1})}},
          {"outputs", {tensor("labels", "INT32", {-1, -1}), tensor("scores", "FP32", {-1, -1})}},
          {"parameters", model_shapes(*s.model)}};
      return res.set_content(body.dump(), kJson);
    }
    case Endpoint::kV2ModelReady:
    case Endpoint::kReady:
      if (!ready()) return send_error(res, 503, "shutting down");
      return res.set_content("{\"ready\":true}", kJson);
    case Endpoint::kLive:
      return res.set_content("{\"live\":true}", kJson);
    case Endpoint::kServerMetadata: {
      nlohmann::json body = {{"name", "glide"},
                             {"version", GLIDE_SERVER_VERSION},
                             {"extensions", nlohmann::json::array()}};
      return res.set_content(body.dump(), kJson);
    }
    case Endpoint::kMetrics: {
      const auto gauges = registry_.gauges();
      std::string text = metrics_.render(gauges);
      // The connection loop's, not a model's: how many clients hold a connection (slow ones too).
      text +=
          "# HELP glide_http_open_connections Client connections open now.\n"
          "# TYPE glide_http_open_connections gauge\n"
          "glide_http_open_connections " +
          std::to_string(open_connections()) +
          "\n"
          "# HELP glide_http_receiving_bytes Bytes of request bodies being received now.\n"
          "# TYPE glide_http_receiving_bytes gauge\n"
          "glide_http_receiving_bytes " +
          std::to_string(receiving_bytes()) + "\n";
      return res.set_content(std::move(text), "text/plain; version=0.0.4");
    }
    case Endpoint::kUnknown:
      break;
  }
  send_error(res, 404, "no endpoint " + req.path);
}

}  // namespace glide::server
