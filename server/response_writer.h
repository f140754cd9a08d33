// Predictions and errors as JSON response bodies (TensorFlow Serving v1, KServe v2). Written by
// hand rather than through a JSON DOM: responses are on every request's path, and floats are
// printed in their shortest form that reads back to the same float.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "engine/evaluator.h"

namespace glide::server {

// {"predictions": [{"labels": [..], "scores": [..]}, ...]}
// With `cached` (caching on): each prediction also gets "cached": the hidden layer whose learned
// cache answered it, or null.
std::string write_predict_response(std::span<const engine::Prediction> predictions,
                                   std::span<const int> cached = {});

// {"model_name", "model_version", "id", "outputs": [labels INT32 [batch,k], scores FP32
// [batch,k]]}. Rows shorter than k (sampled mode can score fewer labels) are padded with label
// -1 and score 0 so the tensors stay rectangular. Only the outputs asked for (the request's
// "outputs") are written.
std::string write_infer_response(std::string_view model, std::uint64_t version, std::string_view id,
                                 std::uint32_t k, std::span<const engine::Prediction> predictions,
                                 bool labels = true, bool scores = true);

// {"error": "..."}
std::string write_error(std::string_view message);

// `s` as a JSON string literal, quotes included.
std::string json_quote(std::string_view s);

}  // namespace glide::server
