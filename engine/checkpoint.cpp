#include "engine/checkpoint.h"
#include "engine/sharded_model.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/model_file.h"
#include "engine/output_matrix.h"

namespace glide::engine {

namespace {

std::span<const std::byte> bytes_of(const AlignedArray<float>& a) {
  return std::as_bytes(a.span());
}
std::span<std::byte> bytes_of(AlignedArray<float>& a) {
  return std::as_writable_bytes(a.span());
}

// A bias vector's blocks: NAME.bias and, when asked, its Adam moments.
template <class VectorT, class Fn>
void bias_blocks(const std::string& name, VectorT& v, bool optimizer, Fn&& fn) {
  const std::vector<std::uint64_t> shape{v.size()};
  fn(name + ".bias", v.w, shape);
  if (optimizer) {
    fn(name + ".bias_adam_m", v.m, shape);
    fn(name + ".bias_adam_v", v.v, shape);
  }
}

// Each parameter block of the hidden layers by name (the output layer's matrix saves and loads
// itself, OutputMatrix); weights always, Adam moments when asked.
template <class NetT, class Fn>
void for_each_block(NetT& net, bool optimizer, Fn&& fn) {
  auto matrix = [&](const std::string& name, auto& m) {
    const std::vector<std::uint64_t> shape{m.rows, m.stride};
    fn(name + ".weight", m.w, shape);
    if (optimizer) {
      fn(name + ".adam_m", m.m, shape);
      fn(name + ".adam_v", m.v, shape);
    }
  };
  matrix("input", net.input);
  bias_blocks("input", net.input_bias, optimizer, fn);
  for (std::size_t l = 0; l < net.hidden.size(); ++l) {
    matrix("hidden" + std::to_string(l + 1), net.hidden[l]);
    bias_blocks("hidden" + std::to_string(l + 1), net.hidden_bias[l], optimizer, fn);
  }
}

// The wide layer's sections: its CSR arrays and, when asked, Adagrad's sums.
void save_wide(ModelFileWriter& w, const WideLayer& wide, bool optimizer) {
  const std::uint64_t n = wide.entries();
  w.add("wide.offsets", DType::kU64, {wide.offsets().size()},
        std::as_bytes(std::span(wide.offsets())));
  w.add("wide.labels", DType::kU32, {n}, std::as_bytes(wide.labels()));
  w.add("wide.weight", DType::kF32, {n}, std::as_bytes(wide.weights()));
  if (optimizer && wide.has_optimizer_state())
    w.add("wide.adagrad", DType::kF32, {n}, std::as_bytes(wide.optimizer_sums()));
}

// A network saved before training built its wide layer has none yet (training builds it).
WideLayer load_wide(const ModelFileReader& r, const NetworkConfig& net, bool optimizer) {
  if (!r.has("wide.offsets")) return {};
  const std::uint64_t n = r.info("wide.labels").shape.empty() ? 0 : r.info("wide.labels").shape[0];
  std::vector<std::uint64_t> offsets(std::size_t{net.num_features} + 1);
  AlignedArray<std::uint32_t> labels(n);
  AlignedArray<float> weights(n);
  const std::vector<std::uint64_t> offsets_shape{offsets.size()}, shape{n};
  r.read_into("wide.offsets", DType::kU64, offsets_shape,
              std::as_writable_bytes(std::span(offsets)));
  r.read_into("wide.labels", DType::kU32, shape, std::as_writable_bytes(labels.span()));
  r.read_into("wide.weight", DType::kF32, shape, std::as_writable_bytes(weights.span()));
  WideLayer wide =
      WideLayer::from_arrays(net.num_features, net.num_labels, std::move(offsets),
                             std::move(labels), std::move(weights), r.path() + ": the wide layer");
  if (optimizer && r.has("wide.adagrad")) {
    wide.ensure_optimizer_state();
    r.read_into("wide.adagrad", DType::kF32, shape, std::as_writable_bytes(wide.optimizer_sums()));
  }
  return wide;
}

}  // namespace

void save_model(const std::string& path, const Network& net, const Config& config,
                const TrainingState& state, const SaveOptions& options) {
  if (!state.label_counts.empty() &&
      (state.label_counts.size() != config.net.num_labels || state.label_count_points == 0))
    fail(path, "label counts for " + std::to_string(state.label_counts.size()) + " labels of " +
                   std::to_string(state.label_count_points) + " points, for a model of " +
                   std::to_string(config.net.num_labels) + " labels: not saved");
  ModelFileWriteOptions wo;
  wo.zstd_level = options.zstd_level;
  wo.threads = options.threads;
  ModelFileWriter w(path, wo);
  w.add_json("config", to_json(config));
  const OutputMatrix& out = *net.output;
  // A quantized model has no optimizer state; a bf16 one may have (trained in bf16).
  const bool optimizer = options.optimizer_state && net.has_moments() && out.has_optimizer_state();
  nlohmann::json st{{"samples", state.samples},
                    {"batches", state.batches},
                    {"adam_step", net.step},
                    {"optimizer_state", optimizer},
                    {"precision", precision_name(out.precision())}};
  for (const auto& [key, value] : out.state_fields()) st[key] = value;
  if (!state.label_counts.empty()) st["label_count_points"] = state.label_count_points;
  w.add_json("state", st.dump());
  if (!state.label_counts.empty())
    w.add("train.label_counts", DType::kU32, {state.label_counts.size()},
          std::as_bytes(std::span(state.label_counts)));
  const auto add = [&](const std::string& name, const AlignedArray<float>& a,
                       const std::vector<std::uint64_t>& shape) {
    w.add(name, DType::kF32, shape, bytes_of(a));
  };
  for_each_block(net, optimizer, add);
  out.save(w, optimizer, [&] { bias_blocks("output", net.output_bias, optimizer, add); });
  if (!net.wide.empty()) save_wide(w, net.wide, optimizer);
  if (options.extra_sections) options.extra_sections(w);
  w.commit();
}

void keep_legacy_output_optimizer(const std::string& config_json, TrainConfig& train) {
  const nlohmann::json j = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("train") || !j["train"].is_object()) return;
  if (!j["train"].contains("output_eps")) train.output_eps = train.eps;
  if (j["train"].contains("output_optimizer")) return;
  train.output_optimizer = train.optimizer;
  train.output_lr = train.lr;
}

void keep_legacy_network(const std::string& config_json, NetworkConfig& net) {
  const nlohmann::json j = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("network") || !j["network"].is_object() ||
      j["network"].contains("wide"))
    return;
  net.wide = WideMode::kOff;
}

LoadedModel load_model(const std::string& path, bool optimizer_state) {
  if (is_shard_manifest(path)) return load_sharded_model(path, optimizer_state);
  ModelFileReader r(path);
  r.require_finite_floats();  // every parameter and optimizer moment, the output layer's too
  LoadedModel out;
  const std::string config_json = r.read_json("config");
  out.config = config_from_json(config_json, path + ": section 'config'");
  keep_legacy_output_optimizer(config_json, out.config.train);
  keep_legacy_network(config_json, out.config.net);
  try {
    validate(out.config.net);
  } catch (const Error& e) {
    fail(path, std::string("section 'config': ") + e.what());
  }
  nlohmann::json st;
  try {
    st = nlohmann::json::parse(r.read_json("state"));
    out.state.samples = st.at("samples").get<std::uint64_t>();
    out.state.batches = st.at("batches").get<std::uint64_t>();
    if (r.has("train.label_counts")) {
      out.state.label_count_points = st.at("label_count_points").get<std::uint64_t>();
      if (out.state.label_count_points == 0)
        fail(path, "section 'state': label_count_points is 0 beside train.label_counts");
      out.state.label_counts.resize(out.config.net.num_labels);
      const std::vector<std::uint64_t> shape{out.state.label_counts.size()};
      r.read_into("train.label_counts", DType::kU32, shape,
                  std::as_writable_bytes(std::span(out.state.label_counts)));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("section 'state' is malformed: ") + e.what());
  }
  std::unique_ptr<OutputMatrix> output;
  StateFields fields;
  try {
    const Precision precision = parse_precision(st.value("precision", std::string("fp32")));
    output = make_output_matrix(precision, out.config.net.num_labels, out.config.net.hidden.back());
    for (const auto& [key, value] : st.items())
      fields[key] = value.is_string() ? value.get<std::string>() : value.dump();
  } catch (const Error& e) {
    fail(path, std::string("section 'state': ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("section 'state' is malformed: ") + e.what());
  }
  out.has_optimizer_state = optimizer_state && output->trainable() && r.has("output.adam_m");
  // Every tensor is read from the file: no random init, and the output matrix the file holds.
  out.net =
      std::make_unique<Network>(out.config.net, NetworkStorage{.moments = out.has_optimizer_state,
                                                               .random_init = false,
                                                               .f32_output = false});
  out.net->step = st.value("adam_step", std::uint64_t{0});
  const auto read = [&](const std::string& name, AlignedArray<float>& a,
                        const std::vector<std::uint64_t>& shape) {
    r.read_into(name, DType::kF32, shape, bytes_of(a));
  };
  for_each_block(*out.net, out.has_optimizer_state, read);
  bias_blocks("output", out.net->output_bias, out.has_optimizer_state, read);
  output->load(r, fields, out.has_optimizer_state);
  out.net->output = std::move(output);
  if (has_wide(out.config.net))
    out.net->wide = load_wide(r, out.config.net, out.has_optimizer_state);
  out.net->build_hidden_samplers(out.config.train);  // over the loaded weights
  return out;
}

}  // namespace glide::engine
