#include "apps/config_flags.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/file_util.h"

namespace glide::cli {

namespace {

const char* group_of(const engine::ConfigFlag& f) {
  return f.key.starts_with("train.") ? "training" : "model";
}

// A field's default as its flag takes it ("128,64" for a list), from engine::Config{} as JSON;
// empty when the field has no value there.
std::string default_text(const nlohmann::json& defaults, const engine::ConfigFlag& f) {
  const nlohmann::json::json_pointer at("/" + [&] {
    std::string k = f.key;
    std::replace(k.begin(), k.end(), '.', '/');
    return k;
  }());
  if (!defaults.contains(at)) return "";
  const nlohmann::json& v = defaults[at];
  auto text = [](const nlohmann::json& x) {
    if (x.is_string()) return x.get<std::string>();
    if (!x.is_number_float()) return x.dump();
    char buf[32];  // 1 rather than JSON's 1.0
    std::snprintf(buf, sizeof buf, "%.10g", x.get<double>());
    return std::string(buf);
  };
  if (!v.is_array()) return text(v);
  std::string list;
  for (const auto& item : v) list += (list.empty() ? "" : ",") + text(item);
  return list;
}

// The help text shows the default (cxxopts shows one only for flags declared with
// default_value, and these have none: a flag's absence must leave the config file's value).
void add_flag(cxxopts::Options& o, const engine::ConfigFlag& f, const nlohmann::json& defaults) {
  using Type = engine::ConfigFlag::Type;
  auto adder = o.add_options(group_of(f));
  const std::string d = default_text(defaults, f);
  const std::string help = d.empty() ? f.help : f.help + " (default: " + d + ")";
  switch (f.type) {
    case Type::kU32:
      adder(f.name, help, cxxopts::value<std::uint32_t>());
      break;
    case Type::kU64:
      adder(f.name, help, cxxopts::value<std::uint64_t>());
      break;
    case Type::kReal:
      adder(f.name, help, cxxopts::value<double>());
      break;
    case Type::kText:
      adder(f.name, help, cxxopts::value<std::string>());
      break;
  }
}

engine::FlagValue flag_value(const cxxopts::ParseResult& r, const engine::ConfigFlag& f) {
  using Type = engine::ConfigFlag::Type;
  switch (f.type) {
    case Type::kU32:
      return r[f.name].as<std::uint32_t>();
    case Type::kU64:
      return r[f.name].as<std::uint64_t>();
    case Type::kReal:
      return r[f.name].as<double>();
    case Type::kText:
      break;
  }
  return r[f.name].as<std::string>();
}

// "dense,lsh,dense": one mode per hidden layer; other settings keep what the config file (or the
// defaults) gave each layer.
void parse_hidden_sampling(const std::string& s, std::vector<engine::HiddenSampling>& layers) {
  std::vector<std::string> modes;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item != "dense" && item != "lsh")
      fail("--hidden-sampling: expected dense or lsh per layer (e.g. dense,lsh), got '" + item +
           "' in '" + s + "'");
    modes.push_back(item);
  }
  layers.resize(modes.size());
  for (std::size_t l = 0; l < modes.size(); ++l) layers[l].sampled = modes[l] == "lsh";
}

}  // namespace

// The field table's flags (engine::config_flags), plus --config and the two per-layer flags of
// hidden_sampling, which set a list rather than one field.
void add_config_flags(cxxopts::Options& o) {
  o.add_options("model")("config", "JSON config file (flags override it)",
                         cxxopts::value<std::string>())(
      "hidden-sampling",
      "per hidden layer: dense or lsh, e.g. dense,lsh,dense (the first layer is always dense) "
      "(default: every layer dense)",
      cxxopts::value<std::string>())(
      "hidden-sparsity",
      "fraction of a sampled hidden layer's neurons active per sample (default: " +
          [] {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", engine::HiddenSampling{}.sparsity);
            return std::string(buf);
          }() +
          ")",
      cxxopts::value<double>());
  const nlohmann::json defaults = nlohmann::json::parse(engine::to_json(engine::Config{}));
  for (const engine::ConfigFlag& f : engine::config_flags()) add_flag(o, f, defaults);
}

void apply_config_flags(const cxxopts::ParseResult& r, engine::Config& c) {
  if (r.count("config")) {
    const std::string path = r["config"].as<std::string>();
    const auto bytes = read_file_bytes(path);
    engine::merge_json(c, std::string(bytes.begin(), bytes.end()), path);
  }
  for (const engine::ConfigFlag& f : engine::config_flags())
    if (r.count(f.name)) engine::set_config_flag(c, f.name, flag_value(r, f));
  auto& n = c.net;
  if (r.count("hidden-sampling"))
    parse_hidden_sampling(r["hidden-sampling"].as<std::string>(), n.hidden_sampling);
  if (r.count("hidden-sparsity")) {
    if (n.hidden_sampling.empty()) fail("--hidden-sparsity needs sampled hidden layers");
    for (auto& h : n.hidden_sampling) h.sparsity = r["hidden-sparsity"].as<double>();
  }
  engine::validate(c.train);
}

void reject_unmatched(const cxxopts::ParseResult& r) {
  if (!r.unmatched().empty()) fail("unexpected argument '" + r.unmatched().front() + "'");
}

}  // namespace glide::cli
