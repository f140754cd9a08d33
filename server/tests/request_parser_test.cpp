// Request parsing and response writing without a server: every malformed or out-of-range input
// is a RequestError naming what is wrong, and valid ones come out exactly as sent.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "server/request_parser.h"
#include "server/response_writer.h"

using namespace glide;
using namespace glide::server;

namespace {
const InputLimits kLimits{100, 50, 5};

std::string error_of(const std::string& body, bool v2 = false) {
  try {
    v2 ? parse_infer_request(body, kLimits) : parse_predict_request(body, kLimits);
  } catch (const RequestError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("v1 instances in both forms, k and mode") {
  const auto r = parse_predict_request(
      R"({"instances": [{"indices": [3, 7], "values": [0.5, -1.25]}, {"features": {"12": 2, "4": 1e-3}},
          {"indices": [], "values": []}], "k": 3, "mode": "sampled"})",
      kLimits);
  REQUIRE(r.num_instances() == 3);
  CHECK(r.k == 3);
  CHECK(r.mode == engine::EvalMode::kSampled);
  CHECK(std::vector(r.instance(0).ids.begin(), r.instance(0).ids.end()) ==
        std::vector<std::uint32_t>{3, 7});
  CHECK(std::vector(r.instance(0).values.begin(), r.instance(0).values.end()) ==
        std::vector<float>{0.5f, -1.25f});
  CHECK(r.instance(1).size() == 2);
  CHECK(r.instance(2).size() == 0);
  // k defaults to 5 and is clamped to the number of labels.
  CHECK(parse_predict_request(R"({"instances": [{"features": {}}]})", kLimits).k == 5);
  CHECK(parse_predict_request(R"({"instances": [{"features": {}}], "k": 1000})", kLimits).k == 50);
}

TEST_CASE("v1 errors name the instance and the problem") {
  CHECK(error_of("{\"instances\": [").find("malformed JSON") == 0);
  CHECK(error_of("[1, 2]").find("must be a JSON object") != std::string::npos);
  CHECK(error_of("{}").find("\"instances\"") != std::string::npos);
  CHECK(error_of(R"({"instances": []})").find("empty") != std::string::npos);
  CHECK(
      error_of(
          R"({"instances": [{"indices": [1], "values": [1]}, {"indices": [100], "values": [1]}]})") ==
      "instance 1: feature id 100 is out of range (the model has 100 features)");
  CHECK(error_of(R"({"instances": [{"features": {"250": 1}}]})") ==
        "instance 0: feature id 250 is out of range (the model has 100 features)");
  CHECK(error_of(R"({"instances": [{"indices": [-1], "values": [1]}]})").find("feature id -1") !=
        std::string::npos);
  CHECK(error_of(R"({"instances": [{"indices": [1.5], "values": [1]}]})").find("integers") !=
        std::string::npos);
  CHECK(error_of(R"({"instances": [{"indices": [1, 2], "values": [1]}]})") ==
        "instance 0: 2 indices but 1 values");
  CHECK(error_of(R"({"instances": [{"indices": [1], "values": [1e300]}]})").find("not finite") !=
        std::string::npos);
  CHECK(error_of(R"({"instances": [{"indices": [1], "values": ["x"]}]})").find("numbers") !=
        std::string::npos);
  CHECK(error_of(R"({"instances": [{"features": {"x1": 1}}]})").find("bad feature id") !=
        std::string::npos);
  CHECK(error_of(R"({"instances": [7]})").find("instance 0") == 0);
  CHECK(error_of(R"({"instances": [{"features": {}}], "k": 0})") == "k must be a positive integer");
  CHECK(error_of(R"({"instances": [{"features": {}}], "mode": "fast"})").find("mode") == 0);
  CHECK(error_of(std::string(1000, '[')).find("nested deeper") != std::string::npos);
}

TEST_CASE("v2 tensors: indices, values, offsets") {
  const auto r = parse_infer_request(
      R"({"id": "r1", "parameters": {"k": 2},
          "inputs": [{"name": "values", "datatype": "FP32", "shape": [3], "data": [1, 2, 3]},
                     {"name": "indices", "datatype": "INT32", "shape": [3], "data": [[5, 6], [7]]},
                     {"name": "offsets", "datatype": "INT64", "shape": [3], "data": [0, 2, 3]}]})",
      kLimits);
  REQUIRE(r.num_instances() == 2);
  CHECK(r.id == "r1");
  CHECK(r.k == 2);
  CHECK(r.instance(0).size() == 2);
  CHECK(r.instance(1).ids[0] == 7);
  CHECK(r.instance(1).values[0] == 3.0f);
  // Each input's shape is its data's length, as the protocol asks.
  auto body = [](const std::string& idx, const std::string& off, const char* type = "INT32") {
    auto shape = [](const std::string& data) {
      return nlohmann::json::array({nlohmann::json::parse(data).size()}).dump();
    };
    return std::string(R"({"inputs": [{"name": "indices", "datatype": ")") + type +
           R"(", "shape": )" + shape(idx) + R"(, "data": )" + idx +
           R"(}, {"name": "values", "datatype": "FP32", "shape": [3], "data": [1, 1, 1]}, {"name": "offsets", "datatype": "INT32", "shape": )" +
           shape(off) + R"(, "data": )" + off + "}]}";
  };
  CHECK(error_of(body("[1, 2, 3]", "[0, 1, 3]"), true) == "");
  CHECK(error_of(body("[1, 200, 3]", "[0, 1, 3]"), true) ==
        "instance 1: feature id 200 is out of range (the model has 100 features)");
  CHECK(error_of(body("[1, 2, 3]", "[1, 3]"), true).find("first offset") != std::string::npos);
  CHECK(error_of(body("[1, 2, 3]", "[0, 2, 1]"), true).find("decrease") != std::string::npos);
  CHECK(error_of(body("[1, 2, 3]", "[0, 2]"), true).find("more elements") != std::string::npos);
  CHECK(error_of(body("[1, 2, 3]", "[0, 4]"), true).find("last offset") != std::string::npos);
  CHECK(error_of(body("[1, 2, 3]", "[0, 3]", "FP32"), true).find("datatype") != std::string::npos);
  CHECK(error_of(R"({"inputs": []})", true).find("no tensor named") != std::string::npos);
}

TEST_CASE("responses are valid JSON and floats read back exactly") {
  std::vector<engine::Prediction> p(2);
  p[0] = {{4, 9}, {0.123456789f, 1e-30f}};
  p[1] = {{1}, {0.5f}};
  const auto v1 = nlohmann::json::parse(write_predict_response(p));
  CHECK(v1["predictions"][0]["labels"] == nlohmann::json({4, 9}));
  CHECK(v1["predictions"][0]["scores"][0].get<float>() == 0.123456789f);
  CHECK(v1["predictions"][0]["scores"][1].get<float>() == 1e-30f);
  const auto v2 = nlohmann::json::parse(write_infer_response("m\"x", 3, "id", 2, p));
  CHECK(v2["model_name"] == "m\"x");
  CHECK(v2["model_version"] == "3");
  CHECK(v2["outputs"][0]["shape"] == nlohmann::json({2, 2}));
  CHECK(v2["outputs"][0]["data"] == nlohmann::json({4, 9, 1, -1}));  // short row padded
  CHECK(v2["outputs"][1]["data"][3] == 0);
  CHECK(nlohmann::json::parse(write_error("a\n\"b\"\x01"))["error"] == "a\n\"b\"\x01");
}

TEST_CASE("the answer is bounded: k and instances x k over the limits are 400s naming them") {
  const InputLimits limits{100, 50000, 5, 1000, 4000};
  auto error = [&](const std::string& body, bool v2) {
    try {
      v2 ? parse_infer_request(body, limits) : parse_predict_request(body, limits);
    } catch (const RequestError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string one = R"({"indices": [1], "values": [1]})";
  CHECK(error(R"({"k": 1001, "instances": [)" + one + "]}", false) ==
        "k 1001 is over this server's limit of 1000 (--max-k)");
  CHECK(error(R"({"k": 1000, "instances": [)" + one + "]}", false).empty());
  std::string five = one;
  for (int i = 0; i < 4; ++i) five += "," + one;
  CHECK(error(R"({"k": 800, "instances": [)" + five + "]}", false).empty());  // 4000: at the limit
  CHECK(error(R"({"k": 801, "instances": [)" + five + "]}", false) ==
        "5 instances x k 801 = 4005 labels is over this server's limit of 4000 a request "
        "(--max-response-labels)");
  const std::string v2 =
      R"({"parameters": {"k": 801}, "inputs": [)"
      R"({"name": "indices", "datatype": "INT32", "shape": [5], "data": [1, 2, 3, 4, 5]},)"
      R"({"name": "values", "datatype": "FP32", "shape": [5], "data": [1, 1, 1, 1, 1]},)"
      R"({"name": "offsets", "datatype": "INT64", "shape": [6], "data": [0, 1, 2, 3, 4, 5]}]})";
  CHECK(error(v2, true) ==
        "5 instances x k 801 = 4005 labels is over this server's limit of 4000 a request "
        "(--max-response-labels)");
  // Without limits (0) the same requests parse.
  const InputLimits open{100, 50000, 5};
  CHECK(parse_predict_request(R"({"k": 801, "instances": [)" + five + "]}", open).k == 801);
}

TEST_CASE("probes: v1 field and v2 parameter, the server's default otherwise; bad ones are 400s") {
  const std::string one = R"("instances": [{"indices": [1], "values": [1]}])";
  const std::string v2_inputs =
      R"("inputs": [{"name": "indices", "datatype": "INT32", "shape": [1], "data": [1]},)"
      R"({"name": "values", "datatype": "FP32", "shape": [1], "data": [1]},)"
      R"({"name": "offsets", "datatype": "INT64", "shape": [2], "data": [0, 1]}])";
  auto v1 = [&](const std::string& probes) { return "{" + one + R"(, "probes": )" + probes + "}"; };
  auto v2 = [&](const std::string& probes) {
    return "{" + v2_inputs + R"(, "parameters": {"mode": "sampled", "probes": )" + probes + "}}";
  };
  CHECK(parse_predict_request(v1("7"), kLimits).probes == 7);
  CHECK(parse_infer_request(v2("9"), kLimits).probes == 9);
  CHECK(parse_predict_request(v1(std::to_string(kMaxProbes)), kLimits).probes == kMaxProbes);
  // Absent: the limits' default (0 there: the model's own).
  CHECK(parse_predict_request("{" + one + "}", kLimits).probes == 0);
  InputLimits with_default = kLimits;
  with_default.default_probes = 12;
  CHECK(parse_predict_request("{" + one + "}", with_default).probes == 12);
  CHECK(parse_infer_request("{" + v2_inputs + "}", with_default).probes == 12);
  CHECK(parse_predict_request(v1("3"), with_default).probes == 3);

  const std::string range = "probes must be an integer from 1 to " + std::to_string(kMaxProbes);
  for (const std::string& bad :
       std::vector<std::string>{"0", "-1", "2.5", R"("x")", R"("4")", "null", "[4]",
                                std::to_string(kMaxProbes + 1), "18446744073709551615"}) {
    CAPTURE(bad);
    CHECK(error_of(v1(bad)) == range + ", got " + bad);
    CHECK(error_of(v2(bad), true) == range + ", got " + bad);
  }
  // A long value is quoted in part.
  CHECK(error_of(v1('"' + std::string(100, 'a') + '"')) ==
        range + ", got \"" + std::string(39, 'a') + "...");
}

namespace {
// A v2 body with one instance {1: 0.5, 2: 1}; `indices_shape` and `extra` (top-level members,
// with a leading comma) vary.
std::string infer_body(const std::string& indices_shape, const std::string& extra = "") {
  return R"({"inputs": [{"name": "indices", "datatype": "INT32", "shape": )" + indices_shape +
         R"(, "data": [1, 2]}, {"name": "values", "datatype": "FP32", "shape": [2], "data": [0.5, 1]},)"
         R"( {"name": "offsets", "datatype": "INT64", "shape": [2], "data": [0, 2]}])" +
         extra + "}";
}
}  // namespace

TEST_CASE("v2 shapes must agree with the data: negative, wrong rank or wrong size is a 400") {
  CHECK(error_of(infer_body("[2]"), true) == "");
  CHECK(error_of(infer_body("[-2]"), true) ==
        "input \"indices\": shape [-2] must hold non-negative integers");
  CHECK(error_of(infer_body("[1,2]"), true) ==
        "input \"indices\": shape [1,2] has rank 2 (this input is a vector: rank 1)");
  CHECK(error_of(infer_body("[]"), true) ==
        "input \"indices\": shape [] has rank 0 (this input is a vector: rank 1)");
  CHECK(error_of(infer_body("[3]"), true) ==
        "input \"indices\": shape [3] says 3 elements but \"data\" holds 2");
  CHECK(error_of(infer_body("\"x\""), true) == "input \"indices\": needs \"shape\": [n]");
  // Nested data counts its elements.
  CHECK(
      error_of(
          R"({"inputs": [{"name": "indices", "datatype": "INT32", "shape": [2], "data": [[1], [2]]},
      {"name": "values", "datatype": "FP32", "shape": [3], "data": [0.5, 1]},
      {"name": "offsets", "datatype": "INT64", "shape": [2], "data": [0, 2]}]})",
          true) == "input \"values\": shape [3] says 3 elements but \"data\" holds 2");
}

TEST_CASE("v2 outputs: only the named ones, an unknown name is a 400 naming it") {
  auto parsed = parse_infer_request(infer_body("[2]"), kLimits);
  CHECK((parsed.want_labels && parsed.want_scores));
  parsed = parse_infer_request(infer_body("[2]", R"(, "outputs": [{"name": "scores"}])"), kLimits);
  CHECK((!parsed.want_labels && parsed.want_scores));
  parsed = parse_infer_request(infer_body("[2]", R"(, "outputs": [{"name": "labels"}])"), kLimits);
  CHECK((parsed.want_labels && !parsed.want_scores));
  CHECK(error_of(infer_body("[2]", R"(, "outputs": [{"name": "probs"}])"), true) ==
        "outputs: unknown output \"probs\" (known: labels, scores)");
  std::vector<engine::Prediction> p(1);
  p[0] = {{4, 9}, {0.75f, 0.25f}};
  const auto scores_only =
      nlohmann::json::parse(write_infer_response("m", 1, "", 2, p, false, true));
  REQUIRE(scores_only["outputs"].size() == 1);
  CHECK(scores_only["outputs"][0]["name"] == "scores");
  CHECK(scores_only["outputs"][0]["data"] == nlohmann::json({0.75, 0.25}));
  const auto labels_only =
      nlohmann::json::parse(write_infer_response("m", 1, "", 2, p, true, false));
  REQUIRE(labels_only["outputs"].size() == 1);
  CHECK(labels_only["outputs"][0]["data"] == nlohmann::json({4, 9}));
}

TEST_CASE("unknown keys are 400s naming the key (v1, v2, parameters, instances, tensors)") {
  CHECK(error_of(R"({"instances": [{"features": {}}], "topk": 3})") ==
        "unknown key \"topk\" (known: instances, inputs, k, mode, probes, signature_name)");
  CHECK(error_of(R"({"instances": [{"features": {}}, {"features": {}, "weight": 1}]})") ==
        "instance 1: unknown key \"weight\" (known: indices, values, features)");
  CHECK(error_of(R"({"instances": [{"features": {}, "indices": [], "values": []}]})")
            .find("not both") != std::string::npos);
  CHECK(error_of(infer_body("[2]", R"(, "topk": 3)"), true) ==
        "unknown key \"topk\" (known: id, inputs, outputs, parameters)");
  CHECK(error_of(infer_body("[2]", R"(, "parameters": {"k": 1, "topk": 3})"), true) ==
        "parameters: unknown key \"topk\" (known: k, mode, probes)");
  CHECK(error_of(infer_body("[2]", R"(, "outputs": [{"name": "labels", "binary": true}])"), true) ==
        "output \"labels\": unknown key \"binary\" (known: name)");
  CHECK(
      error_of(R"({"inputs": [{"name": "weights", "datatype": "FP32", "shape": [0], "data": []}]})",
               true) == "inputs: unknown input \"weights\" (known: indices, values, offsets)");
  CHECK(
      error_of(
          R"({"inputs": [{"name": "indices", "datatype": "INT32", "shape": [0], "data": [], "dims": 1},
      {"name": "values", "datatype": "FP32", "shape": [0], "data": []},
      {"name": "offsets", "datatype": "INT64", "shape": [1], "data": [0]}]})",
          true) == "input \"indices\": unknown key \"dims\" (known: name, datatype, shape, data)");
  CHECK(error_of(R"({"instances": [{"features": {}}], "signature_name": "serving_default"})") ==
        "");
  CHECK(error_of(R"({"instances": [{"features": {}}], "signature_name": "classify"})") ==
        "signature_name \"classify\" is not served (signatures: serving_default)");
}

TEST_CASE("v1 columnar \"inputs\" reads like the same \"instances\"") {
  const auto rows = parse_predict_request(
      R"({"instances": [{"indices": [3, 7], "values": [0.5, -1.25]}, {"indices": [9], "values": [2]}], "k": 3})",
      kLimits);
  const auto columns = parse_predict_request(
      R"({"inputs": {"indices": [[3, 7], [9]], "values": [[0.5, -1.25], [2]]}, "k": 3})", kLimits);
  CHECK(columns.offsets == rows.offsets);
  CHECK(columns.ids == rows.ids);
  CHECK(columns.values == rows.values);
  CHECK(columns.k == 3);
  const auto features = parse_predict_request(
      R"({"inputs": {"features": [{"3": 0.5, "7": -1.25}, {"9": 2}]}, "k": 3})", kLimits);
  CHECK(features.offsets == rows.offsets);
  CHECK(features.ids == rows.ids);
  CHECK(features.values == rows.values);
  CHECK(error_of(R"({"inputs": {"indices": [[3], [200]], "values": [[1], [1]]}})") ==
        "instance 1: feature id 200 is out of range (the model has 100 features)");
  CHECK(error_of(R"({"inputs": {"indices": [[3], [2]], "values": [[1]]}})") ==
        "inputs: 2 instances of \"indices\" but 1 of \"values\"");
  CHECK(error_of(R"({"inputs": {"indices": [[3]], "values": [[1]], "mask": [[1]]}})") ==
        "inputs: unknown key \"mask\" (known: indices, values, features)");
  CHECK(error_of(R"({"inputs": {"indices": [], "values": []}})") == "\"inputs\" has no instances");
  CHECK(error_of(R"({"inputs": {"features": [{}]}, "instances": [{"features": {}}]})")
            .find("not both") != std::string::npos);
  CHECK(error_of(R"({"inputs": [[3]]})").find("\"inputs\" must be an object") == 0);
}
