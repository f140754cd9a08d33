#include "server/response_writer.h"

#include <charconv>
#include <cstdio>

namespace glide::server {

namespace {

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_float(std::string& out, float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string write_predict_response(std::span<const engine::Prediction> predictions,
                                   std::span<const int> cached) {
  std::string out;
  out.reserve(32 + predictions.size() * (predictions.empty() ? 0 : 32) +
              (predictions.empty() ? 0 : predictions.size() * predictions[0].labels.size() * 24));
  out += "{\"predictions\":[";
  for (std::size_t i = 0; i < predictions.size(); ++i) {
    const auto& p = predictions[i];
    out += i ? ",{\"labels\":[" : "{\"labels\":[";
    for (std::size_t j = 0; j < p.labels.size(); ++j) {
      if (j) out += ',';
      append_uint(out, p.labels[j]);
    }
    out += "],\"scores\":[";
    for (std::size_t j = 0; j < p.scores.size(); ++j) {
      if (j) out += ',';
      append_float(out, p.scores[j]);
    }
    out += ']';
    if (i < cached.size()) {
      out += ",\"cached\":";
      if (cached[i] >= 0)
        append_uint(out, static_cast<std::uint64_t>(cached[i]));
      else
        out += "null";
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string write_infer_response(std::string_view model, std::uint64_t version, std::string_view id,
                                 std::uint32_t k, std::span<const engine::Prediction> predictions,
                                 bool labels, bool scores) {
  std::string shape = "[";
  append_uint(shape, predictions.size());
  shape += ',';
  append_uint(shape, k);
  shape += ']';
  std::string out = "{\"model_name\":" + json_quote(model) + ",\"model_version\":\"";
  append_uint(out, version);
  out += '"';
  if (!id.empty()) out += ",\"id\":" + json_quote(id);
  out += ",\"outputs\":[";
  if (labels) {
    out += "{\"name\":\"labels\",\"datatype\":\"INT32\",\"shape\":" + shape + ",\"data\":[";
    bool first = true;
    for (const auto& p : predictions) {
      for (std::uint32_t j = 0; j < k; ++j) {
        if (!first) out += ',';
        first = false;
        if (j < p.labels.size())
          append_uint(out, p.labels[j]);
        else
          out += "-1";
      }
    }
    out += "]}";
  }
  if (scores) {
    if (labels) out += ',';
    out += "{\"name\":\"scores\",\"datatype\":\"FP32\",\"shape\":" + shape + ",\"data\":[";
    bool first = true;
    for (const auto& p : predictions) {
      for (std::uint32_t j = 0; j < k; ++j) {
        if (!first) out += ',';
        first = false;
        if (j < p.scores.size())
          append_float(out, p.scores[j]);
        else
          out += '0';
      }
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

std::string write_error(std::string_view message) {
  return "{\"error\":" + json_quote(message) + "}";
}

}  // namespace glide::server
