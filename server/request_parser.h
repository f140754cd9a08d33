// Turns the JSON body of a predict request (TensorFlow Serving v1 or KServe v2) into sparse
// inputs, validating everything a client controls. Callable on a string without a server (the
// fuzz target and the unit tests do), so nothing a client sends reaches the model unchecked.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "data/dataset.h"
#include "engine/evaluator.h"

namespace glide::server {

// A request the client got wrong (HTTP 400). The message names the instance and the field.
class RequestError : public Error {
 public:
  explicit RequestError(const std::string& message) : Error(message) {}
};

// What the parser checks inputs against: the serving model's shape.
struct InputLimits {
  std::uint32_t num_features = 0;
  std::uint32_t num_labels = 0;  // k is clamped to this (0: no clamp)
  std::uint32_t default_k = 5;
  // A request's answer is bounded: k (after the clamp to num_labels) at most max_k, and
  // instances x k at most max_labels (0: no bound). 400 above, naming the limit.
  std::uint32_t max_k = 0;
  std::uint64_t max_labels = 0;
  // The probes of requests that do not say (0: the model's default; `glide serve --probes`).
  std::uint32_t default_probes = 0;
};

// The most probes a request may ask for: far above any index's cluster count (probes are clamped
// to it), low enough that a typo like 1e12 is named rather than accepted.
inline constexpr std::uint32_t kMaxProbes = 1u << 20;

// The instances of one request in CSR form plus its options.
struct ParsedRequest {
  std::vector<std::uint64_t> offsets{0};  // instance i: ids/values[offsets[i], offsets[i+1])
  std::vector<std::uint32_t> ids;
  std::vector<float> values;
  std::uint32_t k = 5;
  engine::EvalMode mode = engine::EvalMode::kExact;
  // Sampled mode's search width (engine::SearchParams::probes; exact mode ignores it). 0: the
  // model's default.
  std::uint32_t probes = 0;
  std::string id;  // KServe v2 request id, echoed in the response
  // KServe v2 "outputs": which output tensors the answer carries (both when none are named).
  bool want_labels = true, want_scores = true;

  std::size_t num_instances() const { return offsets.size() - 1; }
  data::SparseView instance(std::size_t i) const {
    const auto b = offsets[i], e = offsets[i + 1];
    return {{ids.data() + b, e - b}, {values.data() + b, e - b}};
  }
};

// v1: {"instances": [{"indices": [..], "values": [..]} | {"features": {"12": 0.5}}, ...],
//      "k": 5, "mode": "exact"|"sampled", "probes": 4}, or TF Serving's columnar form with
//      "inputs": {"indices": [[..], ..], "values": [[..], ..]} | {"features": [{..}, ..]} (one
//      entry per instance) in place of "instances". An unknown key anywhere is a RequestError
//      naming it. Throws RequestError.
ParsedRequest parse_predict_request(std::string_view body, const InputLimits& limits);

// v2: {"id": "..", "inputs": [indices INT32 [nnz], values FP32 [nnz], offsets INT32|INT64
// [batch+1]], "outputs": [{"name": "labels"|"scores"}],
// "parameters": {"k": 5, "mode": "..", "probes": 4}}.
// Each input's "shape" must be rank 1 and agree with its data's length; "outputs" (optional)
// names the tensors the answer carries. An unknown key, input or output is a RequestError
// naming it. Throws RequestError.
ParsedRequest parse_infer_request(std::string_view body, const InputLimits& limits);

}  // namespace glide::server
