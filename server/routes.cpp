#include "server/routes.h"

namespace glide::server {

namespace {

bool valid_name(std::string_view name) {
  return !name.empty() && name.find_first_of("/:") == std::string_view::npos;
}

bool consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

}  // namespace

Route match_route(std::string_view path) {
  if (path == "/metrics") return {Endpoint::kMetrics, "", "GET", ""};
  if (path == "/v2" || path == "/v2/") return {Endpoint::kServerMetadata, "", "GET", ""};
  if (path == "/v2/health/live") return {Endpoint::kLive, "", "GET", ""};
  if (path == "/v2/health/ready") return {Endpoint::kReady, "", "GET", ""};
  std::string_view rest = path;
  if (consume(rest, "/v1/models/")) {
    // NAME[/versions/V][/metadata | :verb]
    std::string_view verb;
    const auto colon = rest.rfind(':');
    const bool has_verb = colon != std::string_view::npos;
    if (has_verb) {
      verb = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    const bool metadata = !has_verb && rest.ends_with("/metadata");
    if (metadata) rest.remove_suffix(std::string_view("/metadata").size());
    std::string_view name = rest, version;
    if (const auto v = rest.find("/versions/"); v != std::string_view::npos) {
      name = rest.substr(0, v);
      version = rest.substr(v + std::string_view("/versions/").size());
      if (!valid_name(version)) return {};
    }
    if (!valid_name(name)) return {};
    const std::string model(name), ver(version);
    if (has_verb) {
      if (verb == "predict") return {Endpoint::kPredict, model, "POST", ver};
      if (verb == "reload" && version.empty()) return {Endpoint::kReload, model, "POST", ""};
      return {};
    }
    return {metadata ? Endpoint::kModelMetadata : Endpoint::kModelStatus, model, "GET", ver};
  }
  if (consume(rest, "/v2/models/")) {
    // NAME[/versions/V][/infer | /ready]
    const auto slash = rest.find('/');
    const std::string_view name = rest.substr(0, slash);
    if (!valid_name(name)) return {};
    std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash), version;
    if (consume(tail, "/versions/")) {
      const auto end = tail.find('/');
      version = tail.substr(0, end);
      tail = end == std::string_view::npos ? "" : tail.substr(end);
      if (!valid_name(version)) return {};
    }
    const std::string model(name), ver(version);
    if (tail.empty()) return {Endpoint::kV2Model, model, "GET", ver};
    if (tail == "/infer") return {Endpoint::kInfer, model, "POST", ver};
    if (tail == "/ready") return {Endpoint::kV2ModelReady, model, "GET", ver};
  }
  return {};
}

const char* endpoint_name(Endpoint e) {
  switch (e) {
    case Endpoint::kPredict:
      return "predict";
    case Endpoint::kReload:
      return "reload";
    case Endpoint::kModelStatus:
      return "model_status";
    case Endpoint::kModelMetadata:
      return "model_metadata";
    case Endpoint::kLive:
      return "health_live";
    case Endpoint::kReady:
      return "health_ready";
    case Endpoint::kServerMetadata:
      return "server_metadata";
    case Endpoint::kV2Model:
      return "v2_model";
    case Endpoint::kV2ModelReady:
      return "v2_model_ready";
    case Endpoint::kInfer:
      return "infer";
    case Endpoint::kMetrics:
      return "metrics";
    case Endpoint::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace glide::server
