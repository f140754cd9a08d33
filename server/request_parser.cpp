#include "server/request_parser.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace glide::server {

namespace {

using nlohmann::json;

// Deep nesting is never valid here, and bounding it keeps any recursion (ours, the JSON library's)
// shallow whatever a client sends.
constexpr int kMaxDepth = 32;

[[noreturn]] void reject(const std::string& message) {
  throw RequestError(message);
}

void check_depth(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth)
        reject("malformed request: JSON nested deeper than " + std::to_string(kMaxDepth));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

json parse_json(std::string_view body) {
  check_depth(body);
  try {
    json doc = json::parse(body);
    if (!doc.is_object()) reject("malformed request: the body must be a JSON object");
    return doc;
  } catch (const json::exception& e) {
    reject(std::string("malformed JSON: ") + e.what());
  }
}

std::uint32_t parse_k(const json& v, const InputLimits& limits) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 1 ||
      v.get<std::int64_t>() > std::numeric_limits<std::uint32_t>::max())
    reject("k must be a positive integer");
  auto k = static_cast<std::uint32_t>(v.get<std::int64_t>());
  // Clamped here so requests asking for more labels than exist batch with the rest.
  if (limits.num_labels) k = std::min(k, limits.num_labels);
  if (limits.max_k && k > limits.max_k)
    reject("k " + std::to_string(k) + " is over this server's limit of " +
           std::to_string(limits.max_k) + " (--max-k)");
  return k;
}

// Bounds the size of the answer: instances x k labels and scores.
void check_answer_size(std::uint64_t instances, std::uint32_t k, const InputLimits& limits) {
  if (limits.max_labels && instances * k > limits.max_labels)
    reject(std::to_string(instances) + " instances x k " + std::to_string(k) + " = " +
           std::to_string(instances * k) + " labels is over this server's limit of " +
           std::to_string(limits.max_labels) + " a request (--max-response-labels)");
}

engine::EvalMode parse_mode(const json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "exact") return engine::EvalMode::kExact;
    if (s == "sampled") return engine::EvalMode::kSampled;
  }
  reject("mode must be \"exact\" or \"sampled\"");
}

// At most the first 40 characters of `v`'s JSON, for an error message quoting what was sent.
std::string quoted(const json& v) {
  const std::string s = v.dump();
  return s.size() <= 40 ? s : s.substr(0, 40) + "...";
}

// Sampled mode's search width (engine::SearchParams::probes).
std::uint32_t parse_probes(const json& v) {
  // Integers above 2^63 read as negative here, and are refused with them.
  if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > kMaxProbes)
    reject("probes must be an integer from 1 to " + std::to_string(kMaxProbes) + ", got " +
           quoted(v));
  return static_cast<std::uint32_t>(v.get<std::int64_t>());
}

std::string where(std::size_t instance) {
  return "instance " + std::to_string(instance) + ": ";
}

std::uint32_t parse_feature_id(const json& v, std::size_t instance, const InputLimits& limits) {
  if (!v.is_number_integer()) reject(where(instance) + "feature ids must be integers");
  const auto id = v.get<std::int64_t>();
  if (v.is_number_unsigned() ? v.get<std::uint64_t>() >= limits.num_features
                             : id < 0 || id >= static_cast<std::int64_t>(limits.num_features))
    reject(where(instance) + "feature id " + v.dump() + " is out of range (the model has " +
           std::to_string(limits.num_features) + " features)");
  return static_cast<std::uint32_t>(id);
}

float parse_value(const json& v, std::size_t instance) {
  if (!v.is_number()) reject(where(instance) + "feature values must be numbers");
  const auto x = static_cast<float>(v.get<double>());
  if (!std::isfinite(x)) reject(where(instance) + "feature value " + v.dump() + " is not finite");
  return x;
}

// Every key of `object` must be one of `known`: a misspelt option ("topk") would otherwise be
// ignored silently and the request answered with the default.
void check_keys(const json& object, std::initializer_list<const char*> known,
                const std::string& context) {
  for (const auto& [key, value] : object.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (ok) continue;
    std::string names;
    for (const char* k : known) names += (names.empty() ? "" : ", ") + std::string(k);
    reject(context + "unknown key \"" + key + "\" (known: " + names + ")");
  }
}

// One instance as a {"12": 0.5} object.
void parse_features(const json& f, std::size_t i, const InputLimits& limits, ParsedRequest& out) {
  if (!f.is_object()) reject(where(i) + "\"features\" must be an object {\"id\": value}");
  for (const auto& [key, value] : f.items()) {
    std::uint64_t id = 0;
    if (key.empty() || key.size() > 10) reject(where(i) + "bad feature id \"" + key + "\"");
    for (const char c : key) {
      if (c < '0' || c > '9') reject(where(i) + "bad feature id \"" + key + "\"");
      id = id * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (id >= limits.num_features)
      reject(where(i) + "feature id " + key + " is out of range (the model has " +
             std::to_string(limits.num_features) + " features)");
    out.ids.push_back(static_cast<std::uint32_t>(id));
    out.values.push_back(parse_value(value, i));
  }
  out.offsets.push_back(out.ids.size());
}

// One instance as parallel indices and values arrays.
void parse_pairs(const json& ids, const json& vals, std::size_t i, const InputLimits& limits,
                 ParsedRequest& out) {
  if (!ids.is_array() || !vals.is_array())
    reject(where(i) + "\"indices\" and \"values\" must be arrays");
  if (ids.size() != vals.size())
    reject(where(i) + std::to_string(ids.size()) + " indices but " + std::to_string(vals.size()) +
           " values");
  for (const auto& v : ids) out.ids.push_back(parse_feature_id(v, i, limits));
  for (const auto& v : vals) out.values.push_back(parse_value(v, i));
  out.offsets.push_back(out.ids.size());
}

void parse_instance(const json& inst, std::size_t i, const InputLimits& limits,
                    ParsedRequest& out) {
  if (!inst.is_object()) reject(where(i) + "an instance must be an object");
  check_keys(inst, {"indices", "values", "features"}, where(i));
  const auto f = inst.find("features");
  const auto ids = inst.find("indices");
  const auto vals = inst.find("values");
  if (f != inst.end()) {
    if (ids != inst.end() || vals != inst.end())
      reject(where(i) + "give \"features\" or \"indices\" and \"values\", not both");
    return parse_features(*f, i, limits, out);
  }
  if (ids == inst.end() || vals == inst.end())
    reject(where(i) + "needs \"indices\" and \"values\" (or \"features\")");
  parse_pairs(*ids, *vals, i, limits, out);
}

// TF Serving's columnar form: each named input holds one entry per instance.
void parse_columns(const json& inputs, const InputLimits& limits, std::uint32_t k,
                   ParsedRequest& out) {
  if (!inputs.is_object())
    reject(
        "\"inputs\" must be an object: {\"indices\": [[..], ..], \"values\": [[..], ..]} or "
        "{\"features\": [{..}, ..]}");
  check_keys(inputs, {"indices", "values", "features"}, "inputs: ");
  const auto f = inputs.find("features");
  const auto ids = inputs.find("indices");
  const auto vals = inputs.find("values");
  if (f != inputs.end() && (ids != inputs.end() || vals != inputs.end()))
    reject("inputs: give \"features\" or \"indices\" and \"values\", not both");
  if (f == inputs.end() && (ids == inputs.end() || vals == inputs.end()))
    reject("inputs: needs \"indices\" and \"values\" (or \"features\")");
  const json& first = f != inputs.end() ? *f : *ids;
  if (!first.is_array() || (f == inputs.end() && !vals->is_array()))
    reject("inputs: each input must be an array with one entry per instance");
  if (f == inputs.end() && ids->size() != vals->size())
    reject("inputs: " + std::to_string(ids->size()) + " instances of \"indices\" but " +
           std::to_string(vals->size()) + " of \"values\"");
  if (first.empty()) reject("\"inputs\" has no instances");
  check_answer_size(first.size(), k, limits);
  out.offsets.reserve(first.size() + 1);
  for (std::size_t i = 0; i < first.size(); ++i) {
    if (f != inputs.end())
      parse_features((*f)[i], i, limits, out);
    else
      parse_pairs((*ids)[i], (*vals)[i], i, limits, out);
  }
}

// KServe v2 tensor data: a flat array, or nested arrays flattened in row-major order.
template <class F>
void for_each_element(const json& data, F&& f) {
  if (data.is_array()) {
    for (const auto& e : data) for_each_element(e, f);
  } else {
    f(data);
  }
}

constexpr const char* kInputNames[] = {"indices", "values", "offsets"};

// The named input tensor; every tensor of `inputs` must be one of ours, once.
const json& find_tensor(const json& inputs, const char* name) {
  const json* found = nullptr;
  for (const auto& t : inputs) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string())
      reject("inputs: every tensor needs a \"name\"");
    const auto& n = t["name"].get_ref<const std::string&>();
    bool known = false;
    for (const char* k : kInputNames) known = known || n == k;
    if (!known) reject("inputs: unknown input \"" + n + "\" (known: indices, values, offsets)");
    if (n != name) continue;
    if (found) reject(std::string("inputs: input \"") + name + "\" is given twice");
    found = &t;
  }
  if (!found) reject(std::string("inputs: no tensor named \"") + name + "\"");
  return *found;
}

void check_tensor(const json& t, const char* name, std::initializer_list<const char*> types) {
  const std::string in = std::string("input \"") + name + "\": ";
  check_keys(t, {"name", "datatype", "shape", "data"}, in);
  const auto dt = t.find("datatype");
  bool ok = false;
  if (dt != t.end() && dt->is_string())
    for (const char* type : types) ok = ok || *dt == type;
  if (!ok) {
    std::string allowed;
    for (const char* type : types) allowed += (allowed.empty() ? "" : " or ") + std::string(type);
    reject(in + "datatype must be " + allowed);
  }
  const auto data = t.find("data");
  if (data == t.end() || !data->is_array()) reject(in + "\"data\" must be an array");
  // The shape must describe the data: one dimension (our inputs are vectors), as many
  // elements as the data holds.
  const auto shape = t.find("shape");
  if (shape == t.end() || !shape->is_array()) reject(in + "needs \"shape\": [n]");
  for (const auto& d : *shape)
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0)
      reject(in + "shape " + shape->dump() + " must hold non-negative integers");
  if (shape->size() != 1)
    reject(in + "shape " + shape->dump() + " has rank " + std::to_string(shape->size()) +
           " (this input is a vector: rank 1)");
  std::uint64_t elements = 0;
  for_each_element(*data, [&](const json&) { ++elements; });
  if ((*shape)[0].get<std::uint64_t>() != elements)
    reject(in + "shape " + shape->dump() + " says " + (*shape)[0].dump() +
           " elements but \"data\" holds " + std::to_string(elements));
}

// KServe v2 "outputs": [{"name": "labels"}, ...]; absent or empty means every output.
void parse_outputs(const json& outputs, ParsedRequest& out) {
  if (!outputs.is_array()) reject("\"outputs\" must be an array of {\"name\": ...}");
  if (outputs.empty()) return;
  out.want_labels = out.want_scores = false;
  for (const auto& o : outputs) {
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string())
      reject("outputs: every output needs a \"name\"");
    const auto& name = o["name"].get_ref<const std::string&>();
    check_keys(o, {"name"}, "output \"" + name + "\": ");
    if (name == "labels")
      out.want_labels = true;
    else if (name == "scores")
      out.want_scores = true;
    else
      reject("outputs: unknown output \"" + name + "\" (known: labels, scores)");
  }
}

}  // namespace

ParsedRequest parse_predict_request(std::string_view body, const InputLimits& limits) {
  const json doc = parse_json(body);
  check_keys(doc, {"instances", "inputs", "k", "mode", "probes", "signature_name"}, "");
  ParsedRequest out;
  out.k = std::min(limits.default_k, limits.num_labels ? limits.num_labels : limits.default_k);
  out.probes = limits.default_probes;
  if (const auto k = doc.find("k"); k != doc.end()) out.k = parse_k(*k, limits);
  if (const auto m = doc.find("mode"); m != doc.end()) out.mode = parse_mode(*m);
  if (const auto p = doc.find("probes"); p != doc.end()) out.probes = parse_probes(*p);
  if (const auto s = doc.find("signature_name"); s != doc.end() && *s != "serving_default")
    reject("signature_name " + s->dump() + " is not served (signatures: serving_default)");
  const auto instances = doc.find("instances");
  const auto columns = doc.find("inputs");
  if (instances != doc.end() && columns != doc.end())
    reject("give \"instances\" or \"inputs\", not both");
  if (columns != doc.end()) {
    parse_columns(*columns, limits, out.k, out);
    return out;
  }
  if (instances == doc.end() || !instances->is_array())
    reject("the request needs \"instances\": [...] (or \"inputs\")");
  if (instances->empty()) reject("\"instances\" is empty");
  out.offsets.reserve(instances->size() + 1);
  std::size_t i = 0;
  check_answer_size(instances->size(), out.k, limits);
  for (const auto& inst : *instances) parse_instance(inst, i++, limits, out);
  return out;
}

ParsedRequest parse_infer_request(std::string_view body, const InputLimits& limits) {
  const json doc = parse_json(body);
  check_keys(doc, {"id", "inputs", "outputs", "parameters"}, "");
  ParsedRequest out;
  out.k = std::min(limits.default_k, limits.num_labels ? limits.num_labels : limits.default_k);
  out.probes = limits.default_probes;
  if (const auto id = doc.find("id"); id != doc.end()) {
    if (!id->is_string()) reject("\"id\" must be a string");
    out.id = id->get<std::string>();
  }
  if (const auto p = doc.find("parameters"); p != doc.end()) {
    if (!p->is_object()) reject("\"parameters\" must be an object");
    check_keys(*p, {"k", "mode", "probes"}, "parameters: ");
    if (const auto k = p->find("k"); k != p->end()) out.k = parse_k(*k, limits);
    if (const auto m = p->find("mode"); m != p->end()) out.mode = parse_mode(*m);
    if (const auto n = p->find("probes"); n != p->end()) out.probes = parse_probes(*n);
  }
  if (const auto o = doc.find("outputs"); o != doc.end()) parse_outputs(*o, out);
  const auto inputs = doc.find("inputs");
  if (inputs == doc.end() || !inputs->is_array()) reject("the request needs \"inputs\": [...]");
  const json& indices = find_tensor(*inputs, "indices");
  const json& values = find_tensor(*inputs, "values");
  const json& offsets = find_tensor(*inputs, "offsets");
  check_tensor(indices, "indices", {"INT32", "INT64", "UINT32"});
  check_tensor(values, "values", {"FP32", "FP64"});
  check_tensor(offsets, "offsets", {"INT32", "INT64"});

  std::vector<std::uint64_t> row_offsets;
  for_each_element(offsets["data"], [&](const json& v) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
      reject("input \"offsets\": offsets must be non-negative integers");
    row_offsets.push_back(v.get<std::uint64_t>());
  });
  if (row_offsets.size() < 2) reject("input \"offsets\": needs batch+1 row offsets (at least 2)");
  if (row_offsets[0] != 0) reject("input \"offsets\": the first offset must be 0");
  for (std::size_t r = 1; r < row_offsets.size(); ++r)
    if (row_offsets[r] < row_offsets[r - 1])
      reject("input \"offsets\": offsets must not decrease (row " + std::to_string(r - 1) + ")");
  out.offsets = std::move(row_offsets);
  check_answer_size(out.offsets.size() - 1, out.k, limits);
  const std::uint64_t nnz = out.offsets.back();

  // Instance of each position, for error messages naming the instance.
  std::size_t instance = 0;
  auto instance_of = [&](std::size_t pos) {
    while (instance + 1 < out.offsets.size() && out.offsets[instance + 1] <= pos) ++instance;
    return instance;
  };
  std::size_t pos = 0;
  for_each_element(indices["data"], [&](const json& v) {
    if (pos >= nnz) reject("input \"indices\": more elements than the offsets say");
    out.ids.push_back(parse_feature_id(v, instance_of(pos++), limits));
  });
  instance = 0;
  pos = 0;
  for_each_element(values["data"], [&](const json& v) {
    if (pos >= nnz) reject("input \"values\": more elements than the offsets say");
    out.values.push_back(parse_value(v, instance_of(pos++)));
  });
  if (out.ids.size() != out.values.size())
    reject("inputs: " + std::to_string(out.ids.size()) + " indices but " +
           std::to_string(out.values.size()) + " values");
  if (out.offsets.back() != out.ids.size())
    reject("input \"offsets\": the last offset is " + std::to_string(out.offsets.back()) +
           " but there are " + std::to_string(out.ids.size()) + " indices");
  return out;
}

}  // namespace glide::server
