#include "server/http_server.h"

#include <httplib.h>

#include <strings.h>
#include <sys/socket.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

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

// httplib serves a request start to finish on one pool thread, so the route and start time of
// the request a thread is on can live in thread_locals between the pre-routing hook (which sees
// every routed request, even those whose body turns out too large) and the logger.
thread_local Endpoint current_endpoint = Endpoint::kUnknown;
thread_local Clock::time_point current_start{};

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(write_error(message), kJson);
}

const char* default_message(int status) {
  switch (status) {
    case 400:
      return "malformed HTTP request";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 413:
      return "request body too large";
    case 414:
      return "request URI too long";
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

// httplib 0.11 listens with a backlog of 5: a burst of new connections (64 clients starting at
// once) overflows it and some clients see their connection dropped. Listening again on the bound
// socket raises the backlog (Linux takes a second listen() as an update).
class WideBacklogServer : public httplib::Server {
 public:
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

enum class BodyStatus { kRead, kTooLarge, kMalformed };

// Reads a request's body into `body`, at most max_bytes of it however it is framed: by
// Content-Length, chunked, or neither (then it is empty, as HTTP/1.1 frames it). The rest of a
// body too large is read and dropped (as httplib does for a Content-Length over its limit), so
// the connection stays in step for the next request while memory stays bounded.
BodyStatus read_body(const httplib::Request& req, const httplib::ContentReader& content,
                     std::size_t max_bytes, std::string& body) {
  body.clear();
  const bool has_length = req.has_header("Content-Length");
  if (req.has_header("Transfer-Encoding")) {
    // httplib decodes "chunked" and no other coding; a length beside it is a smuggling risk.
    if (has_length || strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") != 0)
      return BodyStatus::kMalformed;
  } else if (!has_length) {
    return BodyStatus::kRead;
  }
  bool too_large = false;
  const bool read = content([&](const char* data, std::size_t n) {
    too_large = too_large || n > max_bytes - body.size();
    if (!too_large) body.append(data, n);
    return true;
  });
  // httplib itself refuses (reading nothing into `body`) a Content-Length over max_bytes.
  if (too_large ||
      (!read && has_length &&
       std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > max_bytes))
    return BodyStatus::kTooLarge;
  return read ? BodyStatus::kRead : BodyStatus::kMalformed;
}

}  // namespace

void log_line(const std::string& message) {
  std::fprintf(stderr, "glide serve: %s\n", message.c_str());
}

HttpServer::HttpServer(ModelRegistry& registry, Metrics& metrics, ServerOptions options)
    : registry_(registry),
      metrics_(metrics),
      options_(std::move(options)),
      http_(std::make_unique<WideBacklogServer>()) {
  // A client hanging up mid-response must not kill the process: httplib writes with plain
  // send(), which raises SIGPIPE on a closed connection.
  std::signal(SIGPIPE, SIG_IGN);
  const std::size_t threads = std::max<std::size_t>(1, options_.http_threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_timeout(options_.keep_alive_seconds);
  http_->set_keep_alive_max_count(100000);
  http_->set_tcp_nodelay(true);
  install_handlers();
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  // httplib takes the port as an int and the kernel its low 16 bits: 70000 would listen on 4464.
  if (options_.port < 0 || options_.port > 65535)
    fail("port " + std::to_string(options_.port), "is not a TCP port (0-65535)");
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ < 0) fail(options_.host, "cannot bind a port");
  } else {
    if (!http_->bind_to_port(options_.host, options_.port))
      fail(options_.host + ":" + std::to_string(options_.port),
           "cannot bind (in use, or not an address of this machine)");
    port_ = options_.port;
  }
  static_cast<WideBacklogServer&>(*http_).widen_backlog();
  return port_;
}

void HttpServer::serve() {
  if (stopping_) return;
  serving_ = true;
  http_->listen_after_bind();
  serving_ = false;
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  // httplib ignores stop() until its accept loop runs; wait for that if serve() has begun.
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  while (serving_ && !http_->is_running() && Clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_->stop();
}

bool HttpServer::ready() const {
  return !stopping_;
}

void HttpServer::install_handlers() {
  http_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    current_endpoint = match_route(req.path).endpoint;
    current_start = Clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const double seconds = current_start == Clock::time_point{} ? 0 : seconds_since(current_start);
    metrics_.count_request(endpoint_name(current_endpoint), res.status, seconds);
    if (options_.access_log) {
      char line[96];
      std::snprintf(line, sizeof line, " %d %.3f ms", res.status, seconds * 1e3);
      log_line(req.method + " " + req.path + line);
    }
    current_endpoint = Endpoint::kUnknown;
    current_start = {};
  });

  // httplib answers some failures itself (413, a malformed request line): give them JSON bodies.
  http_->set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        res.set_content(write_error(default_message(res.status)), kJson);
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, 500, what);
      });

  auto dispatch = [this](const httplib::Request& req, const std::string& body,
                         httplib::Response& res) {
    const Route route = match_route(req.path);
    if (route.endpoint == Endpoint::kUnknown)
      return send_error(res, 404, "no endpoint " + req.path);
    // HEAD is GET without the body (httplib routes it to the GET handler and drops the body).
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
             {{"name", route.model},
              {"signature_name", ""},
              {"version", std::to_string(s.version)}}},
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
        return res.set_content(metrics_.render(gauges), "text/plain; version=0.0.4");
      }
      case Endpoint::kUnknown:
        break;
    }
    send_error(res, 404, "no endpoint " + req.path);
  };
  // Every method goes through one router, which knows a path's method and answers 405. Bodies
  // are read here, not by httplib, which bounds a body only when it has a Content-Length (a
  // chunked one it buffers whole) and waits for the peer to close when a body has neither
  // framing (HTTP/1.1: such a request has an empty body).
  auto without_body = [dispatch](const httplib::Request& req, httplib::Response& res) {
    dispatch(req, req.body, res);
  };
  auto with_body = [this, dispatch](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& content) {
    std::string body;
    switch (read_body(req, content, options_.max_body_bytes, body)) {
      case BodyStatus::kRead:
        return dispatch(req, body, res);
      case BodyStatus::kTooLarge:
        return send_error(res, 413,
                          "the request body is larger than " +
                              std::to_string(options_.max_body_bytes) +
                              " bytes (--max-body-bytes)");
      case BodyStatus::kMalformed:
        return send_error(res, 400, "malformed or truncated request body");
    }
  };
  const std::string any = ".*";
  http_->Get(any, without_body);
  http_->Options(any, without_body);
  http_->Post(any, with_body);
  http_->Put(any, with_body);
  http_->Delete(any, with_body);
  http_->Patch(any, with_body);
}

}  // namespace glide::server
