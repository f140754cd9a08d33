#include "engine/sharded_model.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/file_util.h"
#include "engine/output_ops.h"
#include "engine/wide_check.h"

namespace glide::engine {

namespace {

// The manifest's first line; the JSON body follows.
constexpr char kManifestMagic[] = "glide-sharded-model v1\n";

// How a matrix like `m` is rebuilt from fp32 rows: its storage, its optimizer state.
OutputStorage storage_like(const OutputMatrix& m, const TrainConfig& train) {
  if (m.precision() == Precision::kInt8)
    fail("int8 output rows cannot be sharded or merged: quantize the merged fp32 model instead");
  OutputStorage s{.precision = m.precision(), .optimizer = m.has_optimizer_state()};
  if (s.precision == Precision::kBF16) s.f32_moments = training_storage(train).f32_moments;
  return s;
}

// A copy of the rows as fp32, with fp32 moments when the matrix has optimizer state.
ParamMatrix rows_as_f32(const OutputMatrix& m) {
  return m.clone()->release_as_f32();
}

// A network of `config` without output rows, holding a copy of `from`'s lower layers and step.
std::unique_ptr<Network> with_lower_layers(const Network& from, const NetworkConfig& config) {
  auto net = std::make_unique<Network>(
      config,
      NetworkStorage{.moments = from.has_moments(), .random_init = false, .f32_output = false});
  net->input = from.input;
  net->input_bias = from.input_bias;
  net->hidden = from.hidden;
  net->hidden_bias = from.hidden_bias;
  net->step = from.step;
  return net;
}

WideLayer slice_wide(const WideLayer& w, LabelRange range) {
  if (w.empty()) return {};
  const bool sums = w.has_optimizer_state();
  std::vector<std::uint64_t> offsets(std::size_t{w.num_features()} + 1, 0);
  std::vector<std::uint32_t> labels;
  std::vector<float> weights, adagrad;
  for (std::uint32_t f = 0; f < w.num_features(); ++f) {
    for (std::uint64_t e = w.offsets()[f]; e < w.offsets()[f + 1]; ++e) {
      if (!range.contains(w.labels()[e])) continue;
      labels.push_back(w.labels()[e] - range.begin);
      weights.push_back(w.weights()[e]);
      if (sums) adagrad.push_back(w.optimizer_sums()[e]);
    }
    offsets[f + 1] = labels.size();
  }
  if (labels.empty()) return {};
  WideLayer out = WideLayer::from_arrays(w.num_features(), range.size(), std::move(offsets),
                                         AlignedArray<std::uint32_t>(labels),
                                         AlignedArray<float>(weights), "the wide layer's shard");
  if (sums) {
    out.ensure_optimizer_state();
    std::ranges::copy(adagrad, out.optimizer_sums().begin());
  }
  return out;
}

WideLayer merge_wide(std::span<Network* const> shards, std::span<const LabelRange> ranges,
                     const NetworkConfig& full) {
  bool any = false, sums = true;
  for (const Network* s : shards)
    if (!s->wide.empty()) any = true, sums = sums && s->wide.has_optimizer_state();
  if (!any) return {};
  std::vector<std::uint64_t> offsets(std::size_t{full.num_features} + 1, 0);
  std::vector<std::uint32_t> labels;
  std::vector<float> weights, adagrad;
  for (std::uint32_t f = 0; f < full.num_features; ++f) {
    for (std::size_t i = 0; i < shards.size(); ++i) {
      const WideLayer& w = shards[i]->wide;
      if (w.empty() || f >= w.num_features()) continue;
      for (std::uint64_t e = w.offsets()[f]; e < w.offsets()[f + 1]; ++e) {
        labels.push_back(w.labels()[e] + ranges[i].begin);
        weights.push_back(w.weights()[e]);
        if (sums) adagrad.push_back(w.optimizer_sums()[e]);
      }
    }
    offsets[f + 1] = labels.size();
  }
  WideLayer out = WideLayer::from_arrays(full.num_features, full.num_labels, std::move(offsets),
                                         AlignedArray<std::uint32_t>(labels),
                                         AlignedArray<float>(weights), "the merged wide layer");
  if (sums) {
    out.ensure_optimizer_state();
    std::ranges::copy(adagrad, out.optimizer_sums().begin());
  }
  return out;
}

std::string folder_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

std::string base_name(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

LabelRange shard_range(std::uint32_t labels, int ranks, int rank) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    fail("shard_range: rank " + std::to_string(rank) + " of " + std::to_string(ranks));
  if (static_cast<std::uint32_t>(ranks) > labels)
    fail("cannot shard " + std::to_string(labels) + " labels over " + std::to_string(ranks) +
         " ranks: every rank needs at least one label");
  const std::uint32_t n = static_cast<std::uint32_t>(ranks), r = static_cast<std::uint32_t>(rank);
  const std::uint32_t base = labels / n, extra = labels % n;
  const std::uint32_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1u : 0u)};
}

NetworkConfig shard_config(const NetworkConfig& full, LabelRange range) {
  NetworkConfig c = full;
  c.num_labels = range.size();
  return c;
}

namespace {

// Share rounds and contrast need every label of the whole training set (a point's labels, a
// label's nearest labels): a shard's wide layer is then a slice of the whole set's.
bool builds_whole(const NetworkConfig& net) {
  return wide_leads(net.wide) && (net.wide_share_rounds > 0 || net.wide_contrast > 0);
}

}  // namespace

double resolve_wide_start(NetworkConfig& net, const data::Dataset& whole_train,
                          LabelNeighbours* neighbours) {
  if (!wide_leads(net.wide)) return 0;  // none, or the rare labels' path: nothing to choose
  if (net.wide_norm_power == kWideNormPowerAuto || net.wide_share_rounds == kWideShareRoundsAuto ||
      net.wide_contrast == kWideContrastAuto)
    settle_wide_start(net, whole_train, neighbours);
  // With share rounds or contrast the shard's layer comes whole from shard_wide_start: no median
  // needed.
  if (builds_whole(net)) return 0;
  return WideLayer::median_norm(whole_train, net.num_features, net.num_labels, wide_options(net));
}

WideLayer shard_wide_start(const NetworkConfig& net, const data::Dataset& whole_train,
                           LabelRange range, const LabelNeighbours* neighbours) {
  if (!has_wide(net) || !builds_whole(net)) return {};
  return WideLayer::from_centroids(whole_train, net.num_features, net.num_labels, wide_options(net),
                                   neighbours)
      .label_slice(range.begin, range.end);
}

void keep_shard_labels(data::Dataset& d, LabelRange range) {
  std::vector<std::uint64_t> offsets{0};
  offsets.reserve(d.label_offsets.size());
  std::vector<std::uint32_t> ids;
  for (std::size_t i = 0; i < d.num_points(); ++i) {
    for (const std::uint32_t y : d.labels(i))
      if (range.contains(y)) ids.push_back(y - range.begin);
    offsets.push_back(ids.size());
  }
  d.label_offsets = std::move(offsets);
  d.label_ids = std::move(ids);
  d.num_labels = range.size();
}

std::unique_ptr<Network> slice_network(const Network& full, LabelRange range,
                                       const TrainConfig& train) {
  if (range.end > full.num_labels() || range.begin >= range.end)
    fail("slice_network: labels [" + std::to_string(range.begin) + ", " +
         std::to_string(range.end) + ") of a model of " + std::to_string(full.num_labels()));
  auto net = with_lower_layers(full, shard_config(full.config(), range));
  const OutputStorage storage = storage_like(*full.output, train);
  const ParamMatrix all = rows_as_f32(*full.output);
  const bool moments = storage.optimizer && all.has_moments();
  ParamMatrix rows(range.size(), all.cols, moments);
  const std::size_t first = std::size_t{range.begin} * all.stride, n = rows.w.size();
  std::copy_n(all.w.data() + first, n, rows.w.data());
  if (moments) {
    std::copy_n(all.m.data() + first, n, rows.m.data());
    std::copy_n(all.v.data() + first, n, rows.v.data());
  }
  net->output = make_output_matrix(std::move(rows), storage);
  const ParamVector& b = full.output_bias;
  net->output_bias = ParamVector(range.size(), b.has_moments());
  std::copy_n(b.w.data() + range.begin, range.size(), net->output_bias.w.data());
  if (b.has_moments()) {
    std::copy_n(b.m.data() + range.begin, range.size(), net->output_bias.m.data());
    std::copy_n(b.v.data() + range.begin, range.size(), net->output_bias.v.data());
  }
  net->wide = slice_wide(full.wide, range);
  net->build_hidden_samplers(train);
  return net;
}

std::unique_ptr<Network> merge_networks(std::span<Network* const> shards, const NetworkConfig& full,
                                        const TrainConfig& train) {
  if (shards.empty()) fail("merge_networks: no shards");
  std::vector<LabelRange> ranges;
  std::uint32_t next = 0;
  const std::string shape = to_json({shard_config(full, {0, 1}), {}});
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const Network& s = *shards[i];
    if (to_json({shard_config(s.config(), {0, 1}), {}}) != shape)
      fail("shard " + std::to_string(i) + ": its network differs from the model's (" +
           to_json({s.config(), {}}) + ")");
    ranges.push_back({next, next + s.num_labels()});
    next += s.num_labels();
  }
  if (next != full.num_labels)
    fail("the shards hold " + std::to_string(next) + " labels, the model " +
         std::to_string(full.num_labels));
  const Network& first = *shards[0];
  auto net = with_lower_layers(first, full);
  const OutputStorage storage = storage_like(*first.output, train);
  bool moments = storage.optimizer, bias_moments = true;
  for (const Network* s : shards) {
    moments = moments && s->output->has_optimizer_state();
    bias_moments = bias_moments && s->output_bias.has_moments();
  }
  ParamMatrix rows(full.num_labels, first.output->cols(), moments);
  net->output_bias = ParamVector(full.num_labels, bias_moments);
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const ParamMatrix part = rows_as_f32(*shards[i]->output);
    const std::size_t at = std::size_t{ranges[i].begin} * rows.stride, n = part.w.size();
    std::copy_n(part.w.data(), n, rows.w.data() + at);
    if (moments) {
      std::copy_n(part.m.data(), n, rows.m.data() + at);
      std::copy_n(part.v.data(), n, rows.v.data() + at);
    }
    const ParamVector& b = shards[i]->output_bias;
    std::copy_n(b.w.data(), ranges[i].size(), net->output_bias.w.data() + ranges[i].begin);
    if (bias_moments) {
      std::copy_n(b.m.data(), ranges[i].size(), net->output_bias.m.data() + ranges[i].begin);
      std::copy_n(b.v.data(), ranges[i].size(), net->output_bias.v.data() + ranges[i].begin);
    }
  }
  OutputStorage merged_storage = storage;
  merged_storage.optimizer = moments;
  net->output = make_output_matrix(std::move(rows), merged_storage);
  net->wide = merge_wide(shards, ranges, full);
  net->build_hidden_samplers(train);
  return net;
}

std::string shard_file_path(const std::string& model, int rank, int ranks, std::uint64_t batches) {
  return model + ".b" + std::to_string(batches) + ".shard-" + std::to_string(rank) + "-of-" +
         std::to_string(ranks);
}

bool is_shard_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[sizeof kManifestMagic - 1] = {};
  return in.read(head, sizeof head) && std::memcmp(head, kManifestMagic, sizeof head) == 0;
}

ShardManifest read_shard_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the sharded model's manifest");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::size_t magic = sizeof kManifestMagic - 1;
  if (text.compare(0, magic, kManifestMagic) != 0) fail(path, "not a sharded model's manifest");
  ShardManifest m;
  try {
    const nlohmann::json j = nlohmann::json::parse(text.substr(magic));
    m.num_labels = j.at("num_labels").get<std::uint32_t>();
    m.state.samples = j.at("samples").get<std::uint64_t>();
    m.state.batches = j.at("batches").get<std::uint64_t>();
    for (const auto& s : j.at("shards"))
      m.shards.push_back({s.at("file").get<std::string>(),
                          {s.at("begin").get<std::uint32_t>(), s.at("end").get<std::uint32_t>()}});
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("malformed sharded model manifest: ") + e.what());
  }
  std::uint32_t next = 0;
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    const ShardEntry& s = m.shards[i];
    if (s.labels.begin != next || s.labels.end <= s.labels.begin)
      fail(path, "shard " + std::to_string(i) + " holds labels [" + std::to_string(s.labels.begin) +
                     ", " + std::to_string(s.labels.end) + "), expected a range starting at " +
                     std::to_string(next));
    if (s.file.empty() || s.file.find('/') != std::string::npos)
      fail(path, "shard " + std::to_string(i) + ": file '" + s.file + "' is not a plain name");
    next = s.labels.end;
  }
  if (m.shards.empty() || next != m.num_labels)
    fail(path, "the shards cover " + std::to_string(next) + " of " + std::to_string(m.num_labels) +
                   " labels");
  return m;
}

void write_shard_manifest(const std::string& path, const ShardManifest& m) {
  nlohmann::json shards = nlohmann::json::array();
  for (const ShardEntry& s : m.shards)
    shards.push_back(
        {{"file", base_name(s.file)}, {"begin", s.labels.begin}, {"end", s.labels.end}});
  const nlohmann::json j{{"num_labels", m.num_labels},
                         {"samples", m.state.samples},
                         {"batches", m.state.batches},
                         {"shards", shards}};
  const std::string text = kManifestMagic + j.dump(1) + "\n";
  write_file_atomic(path, [&](std::FILE* f) {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
      fail(path, "cannot write the sharded model's manifest");
  });
}

namespace {

// Shard i of manifest `m` at `path`, checked against the manifest.
LoadedModel load_listed_shard(const std::string& path, const ShardManifest& m, std::size_t i,
                              bool optimizer_state) {
  const std::string file = folder_of(path) + m.shards[i].file;
  if (is_shard_manifest(file)) fail(file, "a shard of " + path + " is itself a manifest");
  LoadedModel s = load_model(file, optimizer_state);
  if (s.net->num_labels() != m.shards[i].labels.size())
    fail(file, "holds " + std::to_string(s.net->num_labels()) + " labels; the manifest " + path +
                   " says " + std::to_string(m.shards[i].labels.size()));
  if (s.state.samples != m.state.samples || s.state.batches != m.state.batches)
    fail(file, "is from another point of training than its manifest " + path + " (" +
                   std::to_string(s.state.samples) + " samples, the manifest " +
                   std::to_string(m.state.samples) + ")");
  return s;
}

}  // namespace

LoadedModel load_sharded_model(const std::string& path, bool optimizer_state) {
  const ShardManifest m = read_shard_manifest(path);
  std::vector<LoadedModel> shards;
  std::vector<Network*> nets;
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    shards.push_back(load_listed_shard(path, m, i, optimizer_state));
    nets.push_back(shards.back().net.get());
  }
  LoadedModel out;
  out.config = shards[0].config;
  out.config.net.num_labels = m.num_labels;
  out.state = m.state;
  // The label counts, where every shard kept its labels' counts of the same training set.
  bool counted = true;
  for (const LoadedModel& s : shards)
    counted = counted && !s.state.label_counts.empty() &&
              s.state.label_count_points == shards[0].state.label_count_points;
  if (counted) {
    out.state.label_counts.assign(m.num_labels, 0);
    out.state.label_count_points = shards[0].state.label_count_points;
    for (std::size_t i = 0; i < shards.size(); ++i)
      std::copy(shards[i].state.label_counts.begin(), shards[i].state.label_counts.end(),
                out.state.label_counts.begin() + m.shards[i].labels.begin);
  }
  out.has_optimizer_state = true;
  for (const LoadedModel& s : shards) out.has_optimizer_state &= s.has_optimizer_state;
  try {
    out.net = merge_networks(nets, out.config.net, out.config.train);
  } catch (const Error& e) {
    fail(path, e.what());
  }
  return out;
}

LoadedModel load_model_shard(const std::string& path, int ranks, int rank, bool optimizer_state) {
  if (is_shard_manifest(path)) {
    const ShardManifest m = read_shard_manifest(path);
    if (m.shards.size() == static_cast<std::size_t>(ranks) &&
        m.shards[rank].labels == shard_range(m.num_labels, ranks, rank)) {
      LoadedModel s = load_listed_shard(path, m, static_cast<std::size_t>(rank), optimizer_state);
      s.config.net.num_labels = m.num_labels;
      TrainingState own = std::move(s.state);
      s.state = m.state;
      s.state.label_counts = std::move(own.label_counts);
      s.state.label_count_points = own.label_count_points;
      return s;
    }
  }
  LoadedModel whole = load_model(path, optimizer_state);
  const LabelRange range = shard_range(whole.config.net.num_labels, ranks, rank);
  whole.net = slice_network(*whole.net, range, whole.config.train);
  std::vector<std::uint32_t>& counts = whole.state.label_counts;
  if (!counts.empty()) {
    counts.erase(counts.begin() + range.end, counts.end());
    counts.erase(counts.begin(), counts.begin() + range.begin);
  }
  return whole;
}

}  // namespace glide::engine
