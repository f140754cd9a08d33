#include "cache/cache_file.h"
#include "engine/sharded_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace glide::cache {

namespace {

std::string prefix(std::uint32_t layer) {
  return "cache/" + std::to_string(layer) + "/";
}

template <class T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span(v));
}

template <class T>
std::vector<T> read_array(const engine::ModelFileReader& r, const std::string& name,
                          engine::DType dtype, std::vector<std::uint64_t> shape) {
  std::uint64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<T> out(n);
  r.read_into(name, dtype, shape, std::as_writable_bytes(std::span(out)));
  return out;
}

}  // namespace

void CacheSectionWriter::add(engine::ModelFileWriter& w, const CacheStates& states) {
  keep_.insert(states.begin(), states.end());
  owned_.reserve(owned_.size() + states.size());
  for (const auto& [layer, st] : states) {
    const CacheModel& m = *st.model;
    if (m.layer() != layer)
      fail("cache of layer " + std::to_string(layer) + " says layer " + std::to_string(m.layer()));
    if (m.is_compact())
      fail("cache of layer " + std::to_string(layer) +
           ": a compact (published) version cannot be "
           "saved; save the trainer's state");
    Owned& o = owned_.emplace_back();
    const std::uint32_t C = m.classes(), D = m.dim(), R = m.row_dim();
    o.weight.resize(std::size_t{C} * R);
    for (std::uint32_t c = 0; c < C; ++c)
      std::copy_n(m.weight_row(c), R, o.weight.data() + std::size_t{c} * R);
    for (const auto& [label, count] : st.counts) {
      o.labels.push_back(label);
      o.counts.push_back(count);
    }
    const std::string p = prefix(layer);
    const nlohmann::json meta{
        // Format 1 knows neither the ratio test nor the sketch: only a plain cosine cache may
        // say 1.
        {"cache_format",
         m.confidence() == Confidence::kCosine && m.sketch() == 0 ? 1 : kCacheFormat},
        {"layer", layer},
        {"dim", D},
        {"hot", m.hot().size()},
        {"threshold", st.threshold},
        {"examples", m.examples},
        {"version", m.version},
        {"counts", o.labels.size()},
        {"form", form_name(m.form())},
        {"confidence", confidence_name(m.confidence())},
        {"sketch", m.sketch()}};
    w.add_json(p + "meta", meta.dump());
    w.add(p + "hot", engine::DType::kU32, {m.hot().size()}, bytes_of(m.hot()));
    w.add(p + "weight", engine::DType::kF32, {C, R}, bytes_of(o.weight));
    w.add(p + "bias", engine::DType::kF32, {C}, bytes_of(m.bias()));
    w.add(p + "labels", engine::DType::kU32, {o.labels.size()}, bytes_of(o.labels));
    w.add(p + "counts", engine::DType::kF32, {o.counts.size()}, bytes_of(o.counts));
  }
}

CacheStates read_caches(const engine::ModelFileReader& r, const engine::NetworkConfig& net) {
  CacheStates out;
  for (const auto& info : r.sections()) {
    const std::string& name = info.name;
    if (name.rfind("cache/", 0) != 0 || name.size() < 5 ||
        name.compare(name.size() - 5, 5, "/meta") != 0)
      continue;
    const std::string where = "section '" + name + "'";
    auto bad = [&](const std::string& what) { fail(r.path(), where + ": " + what); };
    std::uint32_t layer = 0, dim = 0, sketch = 0;
    std::uint64_t hot = 0, counts = 0, examples = 0, version = 0;
    double threshold = 0;
    CacheForm form = CacheForm::kLinear;
    Confidence confidence = Confidence::kCosine;
    try {
      const auto meta = nlohmann::json::parse(r.read_json(name));
      const auto format = meta.at("cache_format").get<std::uint32_t>();
      if (format < 1 || format > kCacheFormat)
        bad("cache format " + std::to_string(format) + " is not supported (this glide reads 1 to " +
            std::to_string(kCacheFormat) + ")");
      layer = meta.at("layer").get<std::uint32_t>();
      dim = meta.at("dim").get<std::uint32_t>();
      hot = meta.at("hot").get<std::uint64_t>();
      threshold = meta.at("threshold").get<double>();
      examples = meta.at("examples").get<std::uint64_t>();
      version = meta.value("version", std::uint64_t{0});
      counts = meta.at("counts").get<std::uint64_t>();
      form = parse_form(meta.value("form", std::string("linear")));
      // Caches saved before the ratio test was the default were tuned on the best cosine.
      confidence = format == 1 ? Confidence::kCosine
                               : parse_confidence(meta.at("confidence").get<std::string>());
      if (format >= 2) sketch = meta.value("sketch", std::uint32_t{0});
    } catch (const nlohmann::json::exception& e) {
      bad(std::string("malformed: ") + e.what());
    } catch (const Error& e) {
      bad(e.what());
    }
    if (name != prefix(layer) + "meta") bad("says layer " + std::to_string(layer));
    if (layer >= net.hidden.size())
      bad("cache of hidden layer " + std::to_string(layer) + ", but the model has " +
          std::to_string(net.hidden.size()) + " hidden layers");
    if (dim != net.hidden[layer])
      bad("cache width " + std::to_string(dim) + " differs from hidden layer " +
          std::to_string(layer) + "'s " + std::to_string(net.hidden[layer]));
    // Centroid caches hold up to a few rows per label (learned_cache.h, rows_per_label).
    if (hot > std::uint64_t{net.num_labels} * (form == CacheForm::kCentroid ? 64 : 1))
      bad("more hot rows than the model has labels allows");
    if (counts > net.num_labels) bad("more counted labels than the model has labels");
    if (sketch != 0 && (sketch >= dim || form != CacheForm::kCentroid))
      bad("a sketch of " + std::to_string(sketch) + " needs a centroid cache on a wider layer");
    const std::uint32_t rdim = sketch ? sketch : dim;
    if (!(threshold >= 0 && threshold <= 1)) bad("threshold is not in [0, 1]");
    const std::string p = prefix(layer);
    auto hot_ids = read_array<std::uint32_t>(r, p + "hot", engine::DType::kU32, {hot});
    std::vector<std::uint32_t> sorted = hot_ids;
    std::sort(sorted.begin(), sorted.end());
    if ((form != CacheForm::kCentroid &&
         std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) ||
        (!sorted.empty() && sorted.back() >= net.num_labels))
      fail(r.path(), "section '" + p + "hot': labels must be below " +
                         std::to_string(net.num_labels) + " (and distinct in a linear cache)");
    const auto w = read_array<float>(r, p + "weight", engine::DType::kF32, {hot + 1, rdim});
    const auto b = read_array<float>(r, p + "bias", engine::DType::kF32, {hot + 1});
    if (!std::all_of(w.begin(), w.end(), [](float v) { return std::isfinite(v); }))
      fail(r.path(), "section '" + p + "weight' holds non-finite values");
    if (!std::all_of(b.begin(), b.end(), [](float v) { return std::isfinite(v); }))
      fail(r.path(), "section '" + p + "bias' holds non-finite values");
    const auto labels = read_array<std::uint32_t>(r, p + "labels", engine::DType::kU32, {counts});
    const auto cnt = read_array<float>(r, p + "counts", engine::DType::kF32, {counts});
    CacheState st;
    auto model = std::make_shared<CacheModel>(
        CacheModel::from_parameters(layer, dim, std::move(hot_ids), w, b, form, sketch));
    model->set_confidence(confidence);
    model->examples = examples;
    model->version = version;
    st.model = std::move(model);
    st.threshold = threshold;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] >= net.num_labels || !(cnt[i] >= 0) || !std::isfinite(cnt[i]))
        fail(r.path(),
             "section '" + p + "labels'/'counts': entry " + std::to_string(i) + " is out of range");
      st.counts.push_back({labels[i], cnt[i]});
    }
    out.emplace(layer, std::move(st));
  }
  return out;
}

CacheStates read_caches(const std::string& path, const engine::NetworkConfig& net) {
  if (engine::is_shard_manifest(path)) return {};  // a sharded model saves no caches
  engine::ModelFileReader r(path);
  return read_caches(r, net);
}

}  // namespace glide::cache
