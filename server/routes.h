// The server's URL space: which endpoint a path names, the model in it, and the one HTTP method
// it takes (so a wrong method is a 405, not a 404).
#pragma once
#include <string>
#include <string_view>

namespace glide::server {

enum class Endpoint {
  kUnknown,
  // Each model path may name the version: /v1/models/{name}/versions/{v}..., and
  // /v2/models/{name}/versions/{v}... (not :reload, which makes a new version).
  kPredict,         // POST /v1/models/{name}:predict
  kReload,          // POST /v1/models/{name}:reload
  kModelStatus,     // GET  /v1/models/{name}
  kModelMetadata,   // GET  /v1/models/{name}/metadata
  kLive,            // GET  /v2/health/live
  kReady,           // GET  /v2/health/ready
  kServerMetadata,  // GET  /v2
  kV2Model,         // GET  /v2/models/{name}
  kV2ModelReady,    // GET  /v2/models/{name}/ready
  kInfer,           // POST /v2/models/{name}/infer
  kMetrics,         // GET  /metrics
};

struct Route {
  Endpoint endpoint = Endpoint::kUnknown;
  std::string model;        // empty for server-wide endpoints
  const char* method = "";  // the method the endpoint takes
  std::string version;      // the version the path names (empty: the one served)
};

Route match_route(std::string_view path);
// Metric label of an endpoint: "predict", "infer", "metrics", ...
const char* endpoint_name(Endpoint e);

}  // namespace glide::server
