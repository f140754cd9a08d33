#include <doctest/doctest.h>

#include "server/routes.h"

using namespace glide::server;

TEST_CASE("paths map to endpoints, models and methods") {
  auto r = match_route("/v1/models/amazon:predict");
  CHECK(r.endpoint == Endpoint::kPredict);
  CHECK(r.model == "amazon");
  CHECK(std::string(r.method) == "POST");
  CHECK(match_route("/v1/models/a:reload").endpoint == Endpoint::kReload);
  CHECK(match_route("/v1/models/a").endpoint == Endpoint::kModelStatus);
  CHECK(match_route("/v1/models/a/metadata").model == "a");
  CHECK(match_route("/v1/models/a/metadata").endpoint == Endpoint::kModelMetadata);
  CHECK(match_route("/v2/models/b/infer").endpoint == Endpoint::kInfer);
  CHECK(match_route("/v2/models/b/ready").endpoint == Endpoint::kV2ModelReady);
  CHECK(match_route("/v2/models/b").endpoint == Endpoint::kV2Model);
  CHECK(match_route("/v2/health/live").endpoint == Endpoint::kLive);
  CHECK(match_route("/v2/health/ready").endpoint == Endpoint::kReady);
  CHECK(std::string(match_route("/metrics").method) == "GET");
  for (const char* bad :
       {"/", "/v1/models/", "/v1/models/a:explain", "/v1/models/:predict", "/v1/models/a/b",
        "/v2/models/b/infer/x", "/v2/models//infer", "/metricsx"})
    CHECK_MESSAGE(match_route(bad).endpoint == Endpoint::kUnknown, bad);
  CHECK(std::string(endpoint_name(Endpoint::kPredict)) == "predict");
}

TEST_CASE("model paths may name a version (v1 and v2)") {
  struct Case {
    const char* path;
    Endpoint endpoint;
  };
  for (const Case c : {Case{"/v1/models/a/versions/3:predict", Endpoint::kPredict},
                       Case{"/v1/models/a/versions/3", Endpoint::kModelStatus},
                       Case{"/v1/models/a/versions/3/metadata", Endpoint::kModelMetadata},
                       Case{"/v2/models/a/versions/3", Endpoint::kV2Model},
                       Case{"/v2/models/a/versions/3/infer", Endpoint::kInfer},
                       Case{"/v2/models/a/versions/3/ready", Endpoint::kV2ModelReady}}) {
    const Route r = match_route(c.path);
    CHECK_MESSAGE(r.endpoint == c.endpoint, c.path);
    CHECK_MESSAGE(r.model == "a", c.path);
    CHECK_MESSAGE(r.version == "3", c.path);
  }
  CHECK(match_route("/v1/models/a:predict").version.empty());
  CHECK(match_route("/v2/models/a/infer").version.empty());
  for (const char* bad :
       {"/v1/models/a/versions/3:reload", "/v1/models/a/versions/",
        "/v1/models/a/versions/:predict", "/v2/models/a/versions/", "/v2/models/a/versions/3/x",
        "/v2/models/a/versions//infer", "/v1/models/a/versions/3/4"})
    CHECK_MESSAGE(match_route(bad).endpoint == Endpoint::kUnknown, bad);
}
