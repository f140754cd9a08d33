#include "engine/network.h"

#include <tbb/parallel_for.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "common/error.h"
#include "engine/staged_forward.h"

namespace glide::engine {

namespace {

std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * page : 0;
}

// Fails, before anything is allocated, when the network's parameters (with their optimizer
// moments) would not fit in this machine's memory, naming the layer and the numbers that make it
// large: an absurd shape (a header's label count, --hidden) is an error, not "out of memory".
void check_fits_in_memory(const NetworkConfig& c, const NetworkStorage& storage) {
  const double per_weight = sizeof(float) * (storage.moments ? 3.0 : 1.0);
  struct Part {
    std::string what;
    double bytes;
  };
  const auto& h = c.hidden;
  std::vector<Part> parts;
  parts.push_back({"the input layer (num_features " + std::to_string(c.num_features) +
                       " x hidden[0] " + std::to_string(h[0]) + ")",
                   per_weight * c.num_features * static_cast<double>(h[0])});
  for (std::size_t l = 1; l < h.size(); ++l)
    parts.push_back({"hidden layer " + std::to_string(l) + " (hidden[" + std::to_string(l) + "] " +
                         std::to_string(h[l]) + " x hidden[" + std::to_string(l - 1) + "] " +
                         std::to_string(h[l - 1]) + ")",
                     per_weight * h[l] * static_cast<double>(h[l - 1])});
  parts.push_back(
      {"the output layer (num_labels " + std::to_string(c.num_labels) + " x hidden " +
           std::to_string(h.back()) + ")",
       per_weight * c.num_labels * (storage.f32_output ? static_cast<double>(h.back()) + 1 : 1.0)});
  double total = 0;
  const Part* largest = &parts.front();
  for (const Part& p : parts) {
    total += p.bytes;
    if (p.bytes > largest->bytes) largest = &p;
  }
  const double memory = physical_memory_bytes();
  if (memory > 0 && total > memory)
    fail("network too large: " + largest->what + " needs " + format_bytes(largest->bytes) +
         (storage.moments ? " with its optimizer state" : "") + ", the whole network " +
         format_bytes(total) + ", more than this machine's " + format_bytes(memory) + " of memory");
}

}  // namespace

Network::Network(const NetworkConfig& config, NetworkStorage storage) : config_(config) {
  validate(config_);
  check_fits_in_memory(config_, storage);
  const auto& h = config_.hidden;
  const bool mo = storage.moments;
  input = ParamMatrix(config_.num_features, h[0], mo);
  input_bias = ParamVector(padded(h[0]), mo);
  for (std::size_t l = 1; l < h.size(); ++l) {
    hidden.emplace_back(h[l], h[l - 1], mo);
    hidden_bias.emplace_back(padded(h[l]), mo);
  }
  ParamMatrix W =
      storage.f32_output ? ParamMatrix(config_.num_labels, h.back(), mo) : ParamMatrix();
  output_bias = ParamVector(config_.num_labels, mo);
  if (storage.random_init) {
    // Glorot-uniform scales; the sparse input's fan-in is its typical nonzero count, not the
    // feature count, so the input layer uses a larger scale than dense Glorot would give.
    input.init_uniform(std::sqrt(6.0f / (100.0f + h[0])), derive_seed(config_.seed, 1));
    for (std::size_t l = 1; l < h.size(); ++l)
      hidden[l - 1].init_uniform(std::sqrt(6.0f / (h[l] + h[l - 1])),
                                 derive_seed(config_.seed, 10 + l));
    const float scale = std::sqrt(6.0f / (h.back() + 1000.0f));
    tbb::parallel_for(
        tbb::blocked_range<std::uint32_t>(0, W.rows, 4096),
        [&](const tbb::blocked_range<std::uint32_t>& r) {
          for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
            Rng rng(derive_seed(config_.seed, 1000 + std::uint64_t{storage.first_label} + j));
            float* p = W.row(j);
            for (std::uint32_t c = 0; c < W.cols; ++c) p[c] = scale * (2 * rng.uniformf() - 1);
          }
        });
    build_hidden_samplers(TrainConfig{});
  }
  if (storage.f32_output) output = make_output_matrix(std::move(W), {.precision = Precision::kF32});
}

void Network::ensure_moments() {
  input.ensure_moments();
  input_bias.ensure_moments();
  for (auto& m : hidden) m.ensure_moments();
  for (auto& b : hidden_bias) b.ensure_moments();
  if (output) output->ensure_moments();
  output_bias.ensure_moments();
}

void Network::build_hidden_samplers(const TrainConfig& train) {
  hidden_samplers.assign(config_.hidden.size(), nullptr);
  for (std::size_t l = 1; l < config_.hidden.size(); ++l)
    if (config_.hidden_sampled(l))
      hidden_samplers[l] = make_hidden_sampler(config_, l, train, hidden[l - 1]);
}

void Network::forward_hidden(std::span<const data::SparseView> inputs, HiddenActivations& acts,
                             const Kernels& k) const {
  prepare_activations(*this, inputs.size(), acts);
  acts.inputs.assign(inputs.begin(), inputs.end());
  for (std::size_t l = 0; l < config_.hidden.size(); ++l)
    forward_layer(*this, l, inputs, inputs.size(), acts, k);
}

}  // namespace glide::engine
