#include "apps/cache_flags.h"

#include <algorithm>

#include "common/error.h"

namespace glide::cli {

void add_cache_flags(cxxopts::Options& options) {
  const cache::CacheOptions d;
  options.add_options("Learned caches (docs/caches.md)")(
      "cache-hot", "labels in each cache's hot set",
      cxxopts::value<std::uint32_t>()->default_value(std::to_string(d.hot_labels)))(
      "cache-form", "centroid or linear (a model file's caches keep their own)",
      cxxopts::value<std::string>()->default_value("centroid"))(
      "cache-confidence",
      "a centroid cache's confidence: ratio (ratio test against the next label) or cosine (the "
      "best cosine)",
      cxxopts::value<std::string>()->default_value("ratio"))(
      "cache-sketch",
      "a centroid cache on a layer wider than this is looked up in a CountSketch this wide (0: "
      "never)",
      cxxopts::value<std::uint32_t>()->default_value(std::to_string(d.sketch)))(
      "cache-target", "top-1 agreement of cache hits with the full model to keep",
      cxxopts::value<double>()->default_value("0.99"));
}

double apply_cache_flags(const cxxopts::ParseResult& r, cache::CacheOptions& cache) {
  cache.hot_labels = std::max<std::uint32_t>(1, r["cache-hot"].as<std::uint32_t>());
  try {
    cache.form = cache::parse_form(r["cache-form"].as<std::string>());
  } catch (const Error& e) {
    fail("--cache-form", e.what());
  }
  try {
    cache.confidence = cache::parse_confidence(r["cache-confidence"].as<std::string>());
  } catch (const Error& e) {
    fail("--cache-confidence", e.what());
  }
  cache.sketch = r["cache-sketch"].as<std::uint32_t>();
  const double target = r["cache-target"].as<double>();
  if (!(target > 0 && target < 1)) fail("--cache-target", "must be in (0, 1)");
  return target;
}

bool on_off_flag(const cxxopts::ParseResult& r, const std::string& name) {
  const std::string v = r[name].as<std::string>();
  if (v != "on" && v != "off") fail("--" + name, "must be on or off, got '" + v + "'");
  return v == "on";
}

void add_cache_switch(cxxopts::Options& o, const std::string& help) {
  // No default_value: count() then tells which spelling was given.
  o.add_options()("cache", help + ": on or off (default: off)", cxxopts::value<std::string>())(
      "caches", "same as --cache", cxxopts::value<std::string>());
}

bool cache_switch(const cxxopts::ParseResult& r) {
  const bool cache = r.count("cache") > 0, caches = r.count("caches") > 0;
  if (cache && caches && on_off_flag(r, "cache") != on_off_flag(r, "caches"))
    fail("--cache " + r["cache"].as<std::string>() + " and --caches " +
         r["caches"].as<std::string>() + " disagree (they are one flag)");
  if (cache) return on_off_flag(r, "cache");
  return caches && on_off_flag(r, "caches");
}

}  // namespace glide::cli
