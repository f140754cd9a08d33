#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "server/process_stats.h"
#include "server/response_writer.h"

namespace glide::server {

namespace {

const std::vector<double> kLatencyBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                            1,      2.5,     5,      10};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

std::string number(double x) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// Label values are escaped as the exposition format asks (backslash, quote, newline); a JSON
// string literal escapes a superset of those the same way.
std::string label(const std::string& name, const std::string& value) {
  return name + "=" + json_quote(value);
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// Prometheus' standard process_* series (absent where /proc cannot be read).
void render_process(std::string& out) {
  const ProcessStats p = read_process_stats();
  if (!p.available) return;
  header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out += "process_resident_memory_bytes " + number(p.resident_bytes) + "\n";
  header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
  out += "process_open_fds " + std::to_string(p.open_fds) + "\n";
  header(out, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
  out += "process_cpu_seconds_total " + number(p.cpu_seconds) + "\n";
  header(out, "process_start_time_seconds", "gauge",
         "Start time of the process since the Unix epoch in seconds.");
  out += "process_start_time_seconds " + number(p.start_time_seconds) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double x) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), x);
  ++counts_[it - bounds_.begin()];
  ++count_;
  sum_ += x;
}

std::uint64_t Histogram::count_above(double bound) const {
  std::uint64_t n = 0;
  for (std::size_t b = 0; b < bounds_.size(); ++b)
    if (bounds_[b] > bound) n += counts_[b];
  return n + counts_.back();
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < bounds_.size(); ++b) {
    cumulative += counts_[b];
    out += name + "_bucket{" + labels + sep + "le=\"" + number(bounds_[b]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

Metrics::Metrics() = default;

void Metrics::count_request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
  latency_.try_emplace(endpoint, kLatencyBounds).first->second.observe(seconds);
}

void Metrics::observe_batch(const std::string& model, std::size_t instances,
                            double predict_seconds) {
  std::lock_guard lock(mutex_);
  batch_size_.try_emplace(model, kBatchBounds).first->second.observe(double(instances));
  split_.predict += predict_seconds;
  ++split_.batches;
  split_.instances += instances;
}

void Metrics::add_parse_seconds(double s) {
  std::lock_guard lock(mutex_);
  split_.parse += s;
}
void Metrics::add_queue_wait_seconds(double s) {
  std::lock_guard lock(mutex_);
  split_.queue_wait += s;
}
void Metrics::add_write_seconds(double s) {
  std::lock_guard lock(mutex_);
  split_.write += s;
}
void Metrics::count_reload(const std::string& model, bool ok) {
  std::lock_guard lock(mutex_);
  ++reloads_[{model, ok}];
}

TimeSplit Metrics::time_split() const {
  std::lock_guard lock(mutex_);
  return split_;
}

std::uint64_t Metrics::multi_instance_batches(const std::string& model) const {
  std::lock_guard lock(mutex_);
  const auto it = batch_size_.find(model);
  return it == batch_size_.end() ? 0 : it->second.count_above(1);
}

std::uint64_t Metrics::requests(const std::string& endpoint, int status) const {
  std::lock_guard lock(mutex_);
  const auto it = requests_.find({endpoint, status});
  return it == requests_.end() ? 0 : it->second;
}

std::string Metrics::render(std::span<const ModelGauges> models) const {
  std::lock_guard lock(mutex_);
  std::string out;
  header(out, "glide_http_requests_total", "counter", "HTTP requests by endpoint and status code.");
  for (const auto& [key, n] : requests_)
    out += "glide_http_requests_total{" + label("endpoint", key.first) + ",code=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  header(out, "glide_http_request_duration_seconds", "histogram",
         "Time from request line to response, by endpoint.");
  for (const auto& [endpoint, h] : latency_)
    h.render(out, "glide_http_request_duration_seconds", label("endpoint", endpoint));
  header(out, "glide_batch_size", "histogram", "Instances per predict call, by model.");
  for (const auto& [model, h] : batch_size_)
    h.render(out, "glide_batch_size", label("model", model));
  header(out, "glide_queue_depth", "gauge", "Requests waiting for a batch, by model.");
  for (const auto& m : models)
    out +=
        "glide_queue_depth{" + label("model", m.name) + "} " + std::to_string(m.queue_depth) + "\n";
  header(out, "glide_model_info", "gauge", "Models served: version and shapes (value 1).");
  for (const auto& m : models)
    out += "glide_model_info{" + label("model", m.name) + ",version=\"" +
           std::to_string(m.version) + "\",features=\"" + std::to_string(m.num_features) +
           "\",labels=\"" + std::to_string(m.num_labels) + "\"} 1\n";
  // Learned caches, per model and hidden layer (since the model version was loaded).
  struct CacheSeries {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const cache::LayerStats&);
  };
  const CacheSeries cache_series[] = {
      {"glide_cache_hits_total", "counter", "Requests answered by a learned cache.",
       [](const cache::LayerStats& s) { return double(s.hits); }},
      {"glide_cache_misses_total", "counter", "Cache lookups passed on to the rest of the network.",
       [](const cache::LayerStats& s) { return double(s.misses); }},
      {"glide_cache_shadow_checks_total", "counter",
       "Cache hits also run through the full network.",
       [](const cache::LayerStats& s) { return double(s.shadow_checks); }},
      // No sample before the first check: a share of nothing is unknown, not perfect.
      {"glide_cache_shadow_agreement", "gauge",
       "Share of shadow checks whose top-1 agreed with the full network (absent before the "
       "first check).",
       [](const cache::LayerStats& s) {
         return s.shadow_checks ? double(s.shadow_agreed) / s.shadow_checks : std::nan("");
       }},
      {"glide_cache_threshold", "gauge", "Confidence a lookup needs to be a hit.",
       [](const cache::LayerStats& s) { return s.threshold; }},
      // Saved and spent are two counters (a net saving could fall, which a counter must not):
      // the net saving is glide_cache_time_saved_seconds_total - glide_cache_lookup_seconds_total.
      {"glide_cache_time_saved_seconds_total", "counter",
       "Estimated compute time of the layers that hits skipped.",
       [](const cache::LayerStats& s) { return s.saved_seconds; }},
      {"glide_cache_lookup_seconds_total", "counter",
       "Time spent in cache lookups (hits and misses).",
       [](const cache::LayerStats& s) { return s.lookup_seconds; }},
      {"glide_cache_examples_total", "counter", "Training examples the cache has learned.",
       [](const cache::LayerStats& s) { return double(s.examples); }},
      {"glide_cache_bytes", "gauge", "Memory of the cache's current version.",
       [](const cache::LayerStats& s) { return double(s.bytes); }},
      {"glide_cache_hot_rows", "gauge",
       "Rows (hot labels, a few rows each) of the current version.",
       [](const cache::LayerStats& s) { return double(s.hot_labels); }},
      {"glide_cache_skipped_total", "counter",
       "Inputs not looked up because the cache cost more than it saved (--cache-skip on).",
       [](const cache::LayerStats& s) { return double(s.skipped); }},
      {"glide_cache_saving_seconds", "gauge",
       "Running estimate of the time a lookup saves (hit rate x skipped layers - lookup time; "
       "below 0 the cache is skipped with --cache-skip on).",
       [](const cache::LayerStats& s) { return s.gain_us * 1e-6; }},
  };
  for (const auto& series : cache_series) {
    bool any = false;
    for (const auto& m : models) any = any || !m.cache.empty();
    if (!any) break;
    header(out, series.name, series.type, series.help);
    for (const auto& m : models)
      for (const auto& s : m.cache)
        if (const double v = series.value(s); !std::isnan(v))  // NaN: no sample yet
          out += std::string(series.name) + "{" + label("model", m.name) + ",layer=\"" +
                 std::to_string(s.layer) + "\"} " + number(v) + "\n";
  }
  header(out, "glide_model_reloads_total", "counter", "Model reloads by model and result.");
  for (const auto& [key, n] : reloads_)
    out += "glide_model_reloads_total{" + label("model", key.first) + ",result=\"" +
           (key.second ? "ok" : "error") + "\"} " + std::to_string(n) + "\n";
  header(out, "glide_time_seconds_total", "counter",
         "Serving time by stage: parse, queue_wait, predict, write.");
  const std::pair<const char*, double> stages[] = {{"parse", split_.parse},
                                                   {"queue_wait", split_.queue_wait},
                                                   {"predict", split_.predict},
                                                   {"write", split_.write}};
  for (const auto& [stage, s] : stages)
    out += std::string("glide_time_seconds_total{stage=\"") + stage + "\"} " + number(s) + "\n";
  header(out, "glide_build_info", "gauge", "The glide version serving (value 1).");
  out += "glide_build_info{version=" + json_quote(GLIDE_SERVER_VERSION) + "} 1\n";
  render_process(out);
  return out;
}

}  // namespace glide::server
