#include "engine/checkpoint.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/model_file.h"

namespace glide::engine {

namespace {

std::span<const std::byte> bytes_of(const AlignedArray<float>& a) {
  return std::as_bytes(a.span());
}
std::span<std::byte> bytes_of(AlignedArray<float>& a) {
  return std::as_writable_bytes(a.span());
}

// Each parameter block by name; weights always, Adam moments when asked.
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
  auto vector = [&](const std::string& name, auto& v) {
    const std::vector<std::uint64_t> shape{v.size()};
    fn(name + ".bias", v.w, shape);
    if (optimizer) {
      fn(name + ".bias_adam_m", v.m, shape);
      fn(name + ".bias_adam_v", v.v, shape);
    }
  };
  matrix("input", net.input);
  vector("input", net.input_bias);
  for (std::size_t l = 0; l < net.hidden.size(); ++l) {
    matrix("hidden" + std::to_string(l + 1), net.hidden[l]);
    vector("hidden" + std::to_string(l + 1), net.hidden_bias[l]);
  }
  matrix("output", net.output);
  vector("output", net.output_bias);
}

bool is_output_matrix(const std::string& name) {
  return name == "output.weight" || name == "output.adam_m" || name == "output.adam_v";
}

}  // namespace

void save_model(const std::string& path, const Network& net, const Config& config,
                const TrainingState& state, const SaveOptions& options) {
  ModelFileWriteOptions wo;
  wo.zstd_level = options.zstd_level;
  wo.threads = options.threads;
  ModelFileWriter w(path, wo);
  w.add_json("config", to_json(config));
  const QuantizedRows* q = net.output_int8.get();
  const Bf16Rows* h = net.output_bf16.rows ? &net.output_bf16 : nullptr;
  // A quantized model has no optimizer state; a bf16 one may have (trained in bf16).
  const bool optimizer =
      options.optimizer_state && net.has_moments() && !q && (!h || h->has_optimizer_state());
  nlohmann::json st{{"samples", state.samples},
                    {"batches", state.batches},
                    {"adam_step", net.step},
                    {"optimizer_state", optimizer},
                    {"precision", precision_name(net.output_precision())}};
  if (q) st["granularity"] = quant::granularity_name(q->granularity);
  w.add_json("state", st.dump());
  for_each_block(net, optimizer,
                 [&](const std::string& name, const AlignedArray<float>& a,
                     const std::vector<std::uint64_t>& shape) {
                   if (q && name == "output.weight") return;  // stored as int8 below
                   if (h && is_output_matrix(name)) return;   // stored as bf16 below
                   w.add(name, DType::kF32, shape, bytes_of(a));
                 });
  if (h) {
    const std::vector<std::uint64_t> shape{h->rows, h->stride};
    w.add("output.weight", DType::kBF16, shape, std::as_bytes(h->w.span()));
    if (optimizer && !h->m.empty()) {
      w.add("output.adam_m", DType::kBF16, shape, std::as_bytes(h->m.span()));
      w.add("output.adam_v", DType::kBF16, shape, std::as_bytes(h->v.span()));
    } else if (optimizer) {  // bf16 weights with fp32 moments (--precision bf16-w)
      const std::vector<std::uint64_t> fshape{h->rows, h->f32_stride()};
      w.add("output.adam_m", DType::kF32, fshape, std::as_bytes(h->mf.span()));
      w.add("output.adam_v", DType::kF32, fshape, std::as_bytes(h->vf.span()));
    }
  }
  if (q) {
    w.add("output.weight", DType::kI8, {q->rows, q->stride}, std::as_bytes(q->q.span()));
    w.add("output.weight_scale", DType::kF32, {q->rows}, std::as_bytes(q->scale.span()));
  }
  if (options.extra_sections) options.extra_sections(w);
  w.commit();
}

LoadedModel load_model(const std::string& path, bool optimizer_state) {
  ModelFileReader r(path);
  LoadedModel out;
  out.config = config_from_json(r.read_json("config"), path + ": section 'config'");
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
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("section 'state' is malformed: ") + e.what());
  }
  Precision precision = Precision::kF32;
  quant::Granularity granularity = quant::Granularity::kRow;
  try {
    precision = parse_precision(st.value("precision", std::string("fp32")));
    if (precision == Precision::kInt8)
      granularity = quant::parse_granularity(st.value("granularity", std::string("row")));
  } catch (const Error& e) {
    fail(path, std::string("section 'state': ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("section 'state' is malformed: ") + e.what());
  }
  const bool int8 = precision == Precision::kInt8, is_bf16 = precision == Precision::kBF16;
  out.has_optimizer_state = optimizer_state && !int8 && r.has("output.adam_m");
  // Every tensor is read from the file: no random init, and only the storage the file fills.
  out.net = std::make_unique<Network>(out.config.net,
                                      NetworkStorage{.moments = out.has_optimizer_state,
                                                     .random_init = false,
                                                     .f32_output = precision == Precision::kF32});
  out.net->step = st.value("adam_step", std::uint64_t{0});
  for_each_block(*out.net, out.has_optimizer_state,
                 [&](const std::string& name, AlignedArray<float>& a,
                     const std::vector<std::uint64_t>& shape) {
                   if (int8 && name == "output.weight") return;
                   if (is_bf16 && is_output_matrix(name)) return;
                   r.read_into(name, DType::kF32, shape, bytes_of(a));
                 });
  if (is_bf16) {
    Network& net = *out.net;
    Bf16Rows h(out.config.net.num_labels, out.config.net.hidden.back());
    const std::vector<std::uint64_t> shape{h.rows, h.stride};
    r.read_into("output.weight", DType::kBF16, shape, std::as_writable_bytes(h.w.span()));
    if (out.has_optimizer_state) {
      if (r.info("output.adam_m").dtype == DType::kF32) {  // fp32 moments (bf16-w)
        const std::vector<std::uint64_t> fshape{h.rows, h.f32_stride()};
        h.mf = AlignedArray<float>(std::size_t{h.rows} * h.f32_stride());
        h.vf = AlignedArray<float>(h.mf.size());
        r.read_into("output.adam_m", DType::kF32, fshape, bytes_of(h.mf));
        r.read_into("output.adam_v", DType::kF32, fshape, bytes_of(h.vf));
      } else {
        h.m = AlignedArray<bf16>(h.w.size());
        h.v = AlignedArray<bf16>(h.w.size());
        r.read_into("output.adam_m", DType::kBF16, shape, std::as_writable_bytes(h.m.span()));
        r.read_into("output.adam_v", DType::kBF16, shape, std::as_writable_bytes(h.v.span()));
      }
    }
    net.output = ParamMatrix();
    net.output_bf16 = std::move(h);
  }
  if (int8) {
    Network& net = *out.net;
    auto q = std::make_shared<QuantizedRows>(out.config.net.num_labels,
                                             out.config.net.hidden.back(), granularity);
    const std::vector<std::uint64_t> wshape{q->rows, q->stride}, sshape{q->rows};
    r.read_into("output.weight", DType::kI8, wshape, std::as_writable_bytes(q->q.span()));
    r.read_into("output.weight_scale", DType::kF32, sshape,
                std::as_writable_bytes(q->scale.span()));
    net.output = ParamMatrix();
    net.output_int8 = std::move(q);
  }
  out.net->build_hidden_samplers(out.config.train);  // over the loaded weights
  return out;
}

}  // namespace glide::engine
