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
  if (path == "/metrics") return {Endpoint::kMetrics, "", "GET"};
  if (path == "/v2" || path == "/v2/") return {Endpoint::kServerMetadata, "", "GET"};
  if (path == "/v2/health/live") return {Endpoint::kLive, "", "GET"};
  if (path == "/v2/health/ready") return {Endpoint::kReady, "", "GET"};
  std::string_view rest = path;
  if (consume(rest, "/v1/models/")) {
    if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
      const std::string_view name = rest.substr(0, colon), verb = rest.substr(colon + 1);
      if (!valid_name(name)) return {};
      if (verb == "predict") return {Endpoint::kPredict, std::string(name), "POST"};
      if (verb == "reload") return {Endpoint::kReload, std::string(name), "POST"};
      return {};
    }
    if (rest.ends_with("/metadata")) {
      rest.remove_suffix(std::string_view("/metadata").size());
      return valid_name(rest) ? Route{Endpoint::kModelMetadata, std::string(rest), "GET"} : Route{};
    }
    return valid_name(rest) ? Route{Endpoint::kModelStatus, std::string(rest), "GET"} : Route{};
  }
  if (consume(rest, "/v2/models/")) {
    const auto slash = rest.find('/');
    const std::string_view name = rest.substr(0, slash);
    if (!valid_name(name)) return {};
    if (slash == std::string_view::npos) return {Endpoint::kV2Model, std::string(name), "GET"};
    const std::string_view tail = rest.substr(slash);
    if (tail == "/infer") return {Endpoint::kInfer, std::string(name), "POST"};
    if (tail == "/ready") return {Endpoint::kV2ModelReady, std::string(name), "GET"};
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
