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
