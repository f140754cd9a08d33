#include "engine/config.h"

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace glide::engine {

using nlohmann::json;

const char* name(OutputSampling s) {
  switch (s) {
    case OutputSampling::kRandom:
      return "random";
    case OutputSampling::kDense:
      return "dense";
    default:
      return "lsh";
  }
}
const char* name(LossKind l) {
  return l == LossKind::kSigmoid ? "sigmoid" : "softmax";
}

OutputSampling parse_sampling(const std::string& s) {
  if (s == "lsh") return OutputSampling::kLsh;
  if (s == "random") return OutputSampling::kRandom;
  if (s == "dense") return OutputSampling::kDense;
  fail("output sampling must be lsh, random or dense, got '" + s + "'");
}
LossKind parse_loss(const std::string& s) {
  if (s == "softmax") return LossKind::kSoftmax;
  if (s == "sigmoid") return LossKind::kSigmoid;
  fail("loss must be softmax or sigmoid, got '" + s + "'");
}

namespace {

json lsh_to_j(const LshConfig& l) {
  return json{{"family", l.family},
              {"K", l.K},
              {"L", l.L},
              {"range_pow", l.range_pow},
              {"bucket_size", l.bucket_size},
              {"insert_policy", l.insert_policy},
              {"simhash_ratio", l.simhash_ratio},
              {"bin_size", l.bin_size},
              {"strategy", l.strategy},
              {"min_count", l.min_count}};
}

json hidden_sampling_to_j(const std::vector<HiddenSampling>& layers) {
  json a = json::array();
  for (const HiddenSampling& h : layers)
    a.push_back(h.sampled
                    ? json{{"mode", "lsh"}, {"sparsity", h.sparsity}, {"lsh", lsh_to_j(h.lsh)}}
                    : json{{"mode", "dense"}});
  return a;
}

json to_j(const Config& c) {
  const NetworkConfig& n = c.net;
  const TrainConfig& t = c.train;
  return json{{"network",
               {{"num_features", n.num_features},
                {"num_labels", n.num_labels},
                {"hidden", n.hidden},
                {"loss", name(n.loss)},
                {"sampling", name(n.sampling)},
                {"sparsity", n.sparsity},
                {"prior_fraction", n.prior_fraction},
                {"seed", n.seed},
                {"lsh", lsh_to_j(n.lsh)},
                {"hidden_sampling", hidden_sampling_to_j(n.hidden_sampling)}}},
              {"train",
               {{"optimizer", t.optimizer},
                {"precision", t.precision},
                {"lr", t.lr},
                {"beta1", t.beta1},
                {"beta2", t.beta2},
                {"eps", t.eps},
                {"batch", t.batch},
                {"epochs", t.epochs},
                {"threads", t.threads},
                {"seed", t.seed},
                {"rebuild_every", t.rebuild_every},
                {"rebuild_growth", t.rebuild_growth},
                {"rehash_every", t.rehash_every},
                {"lr_schedule", t.lr_schedule},
                {"lr_final", t.lr_final},
                {"sampled_correction", t.sampled_correction},
                {"max_seconds", t.max_seconds},
                {"eval_every", t.eval_every},
                {"eval_points", t.eval_points}}}};
}

// Reads j[key] into `out` if present, with an error naming the key path on a wrong type.
template <class T>
void read(const json& j, const char* key, T& out, const std::string& where,
          const std::string& path) {
  auto it = j.find(key);
  if (it == j.end()) return;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    fail(where, "config key '" + path + key + "' has the wrong type (" + it->dump() + ")");
  }
}

void check_keys(const json& j, std::initializer_list<const char*> allowed, const std::string& where,
                const std::string& path) {
  if (!j.is_object()) fail(where, "config '" + path + "' must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok |= it.key() == a;
    if (!ok) fail(where, "unknown config key '" + path + it.key() + "'");
  }
}

void read_lsh(const json& l, LshConfig& c, const std::string& where, const std::string& p) {
  check_keys(l,
             {"family", "K", "L", "range_pow", "bucket_size", "insert_policy", "simhash_ratio",
              "bin_size", "strategy", "min_count"},
             where, p);
  read(l, "family", c.family, where, p);
  read(l, "K", c.K, where, p);
  read(l, "L", c.L, where, p);
  read(l, "range_pow", c.range_pow, where, p);
  read(l, "bucket_size", c.bucket_size, where, p);
  read(l, "insert_policy", c.insert_policy, where, p);
  read(l, "simhash_ratio", c.simhash_ratio, where, p);
  read(l, "bin_size", c.bin_size, where, p);
  read(l, "strategy", c.strategy, where, p);
  read(l, "min_count", c.min_count, where, p);
}

// [{"mode": "dense"}, {"mode": "lsh", "sparsity": 0.05, "lsh": {...}}, ...]: replaces the list;
// keys left out of an entry keep HiddenSampling's defaults.
void read_hidden_sampling(const json& a, std::vector<HiddenSampling>& out,
                          const std::string& where) {
  if (!a.is_array()) fail(where, "config 'network.hidden_sampling' must be a JSON array");
  out.assign(a.size(), HiddenSampling{});
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string p = "network.hidden_sampling[" + std::to_string(i) + "].";
    check_keys(a[i], {"mode", "sparsity", "lsh"}, where, p);
    std::string mode = "dense";
    read(a[i], "mode", mode, where, p);
    if (mode != "dense" && mode != "lsh")
      fail(where, "config key '" + p + "mode' must be dense or lsh, got '" + mode + "'");
    out[i].sampled = mode == "lsh";
    read(a[i], "sparsity", out[i].sparsity, where, p);
    if (auto l = a[i].find("lsh"); l != a[i].end()) read_lsh(*l, out[i].lsh, where, p + "lsh.");
  }
}

}  // namespace

std::string to_json(const Config& c, int indent) {
  return to_j(c).dump(indent);
}

void merge_json(Config& c, const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(where, std::string("invalid JSON: ") + e.what());
  }
  check_keys(j, {"network", "train"}, where, "");
  if (auto it = j.find("network"); it != j.end()) {
    const json& n = *it;
    NetworkConfig& nc = c.net;
    check_keys(n,
               {"num_features", "num_labels", "hidden", "loss", "sampling", "sparsity",
                "prior_fraction", "seed", "lsh", "hidden_sampling"},
               where, "network.");
    read(n, "num_features", nc.num_features, where, "network.");
    read(n, "num_labels", nc.num_labels, where, "network.");
    read(n, "hidden", nc.hidden, where, "network.");
    read(n, "sparsity", nc.sparsity, where, "network.");
    read(n, "prior_fraction", nc.prior_fraction, where, "network.");
    read(n, "seed", nc.seed, where, "network.");
    std::string s;
    read(n, "loss", s, where, "network.");
    if (!s.empty()) nc.loss = parse_loss(s);
    s.clear();
    read(n, "sampling", s, where, "network.");
    if (!s.empty()) nc.sampling = parse_sampling(s);
    if (auto l = n.find("lsh"); l != n.end()) read_lsh(*l, nc.lsh, where, "network.lsh.");
    if (auto h = n.find("hidden_sampling"); h != n.end())
      read_hidden_sampling(*h, nc.hidden_sampling, where);
  }
  if (auto it = j.find("train"); it != j.end()) {
    const json& t = *it;
    TrainConfig& tc = c.train;
    const std::string p = "train.";
    check_keys(
        t,
        {"optimizer", "precision", "lr", "beta1", "beta2", "eps", "batch", "epochs", "threads",
         "seed", "rebuild_every", "rebuild_growth", "rehash_every", "sampled_correction",
         "lr_schedule", "lr_final", "max_seconds", "eval_every", "eval_points"},
        where, p);
    read(t, "optimizer", tc.optimizer, where, p);
    read(t, "precision", tc.precision, where, p);
    read(t, "lr", tc.lr, where, p);
    read(t, "beta1", tc.beta1, where, p);
    read(t, "beta2", tc.beta2, where, p);
    read(t, "eps", tc.eps, where, p);
    read(t, "batch", tc.batch, where, p);
    read(t, "epochs", tc.epochs, where, p);
    read(t, "threads", tc.threads, where, p);
    read(t, "seed", tc.seed, where, p);
    read(t, "rebuild_every", tc.rebuild_every, where, p);
    read(t, "rebuild_growth", tc.rebuild_growth, where, p);
    read(t, "rehash_every", tc.rehash_every, where, p);
    read(t, "sampled_correction", tc.sampled_correction, where, p);
    read(t, "lr_schedule", tc.lr_schedule, where, p);
    read(t, "lr_final", tc.lr_final, where, p);
    read(t, "max_seconds", tc.max_seconds, where, p);
    read(t, "eval_every", tc.eval_every, where, p);
    read(t, "eval_points", tc.eval_points, where, p);
  }
}

Config config_from_json(const std::string& text, const std::string& where) {
  Config c;
  merge_json(c, text, where);
  return c;
}

namespace {
void validate_lsh(const LshConfig& l, const std::string& p) {
  if (l.K == 0 || l.K > 32) fail(p + "K must be in 1..32");
  if (l.L == 0 || l.L > 4096) fail(p + "L must be in 1..4096");
  if (l.range_pow == 0 || l.range_pow > 24) fail(p + "range_pow must be in 1..24");
  if (l.bucket_size == 0 || l.bucket_size > 4096) fail(p + "bucket_size must be in 1..4096");
}
}  // namespace

void validate(const NetworkConfig& c) {
  if (c.num_features == 0) fail("network.num_features must be > 0");
  if (c.num_labels == 0) fail("network.num_labels must be > 0");
  if (c.hidden.empty()) fail("network.hidden needs at least one hidden layer");
  for (auto h : c.hidden)
    if (h == 0 || h > 65536) fail("network.hidden sizes must be in 1..65536");
  if (!(c.sparsity > 0 && c.sparsity <= 1)) fail("network.sparsity must be in (0, 1]");
  if (!(c.prior_fraction >= 0 && c.prior_fraction <= 1))
    fail("network.prior_fraction must be in [0, 1]");
  validate_lsh(c.lsh, "network.lsh.");
  if (!c.hidden_sampling.empty() && c.hidden_sampling.size() != c.hidden.size())
    fail("network.hidden_sampling needs one entry per hidden layer (" +
         std::to_string(c.hidden.size()) + "), got " + std::to_string(c.hidden_sampling.size()));
  for (std::size_t l = 0; l < c.hidden_sampling.size(); ++l) {
    const HiddenSampling& h = c.hidden_sampling[l];
    const std::string p = "network.hidden_sampling[" + std::to_string(l) + "].";
    if (!h.sampled) continue;
    if (l == 0)
      fail(p +
           "mode: the first hidden layer reads the sparse input and must be dense (its "
           "weights are stored one row per input feature)");
    if (!(h.sparsity > 0 && h.sparsity <= 1)) fail(p + "sparsity must be in (0, 1]");
    validate_lsh(h.lsh, p + "lsh.");
  }
}

void validate(const TrainConfig& c) {
  if (c.optimizer != "adam" && c.optimizer != "sgd")
    fail("train.optimizer must be adam or sgd, got '" + c.optimizer + "'");
  if (c.precision != "fp32" && c.precision != "bf16-act" && c.precision != "bf16" &&
      c.precision != "bf16-w")
    fail("train.precision must be fp32, bf16-act, bf16 or bf16-w, got '" + c.precision + "'");
  if (!(c.lr > 0 && c.lr < 10)) fail("train.lr must be in (0, 10)");
  if (!(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1))
    fail("train.beta1 and train.beta2 must be in [0, 1)");
  if (!(c.eps > 0)) fail("train.eps must be > 0");
  if (c.batch == 0 || c.batch > 65536) fail("train.batch must be in 1..65536");
  if (!(c.epochs > 0)) fail("train.epochs must be > 0");
  if (c.rebuild_every == 0) fail("train.rebuild_every must be > 0");
  if (!(c.rebuild_growth >= 1)) fail("train.rebuild_growth must be >= 1");
  if (c.lr_schedule != "constant" && c.lr_schedule != "linear")
    fail("train.lr_schedule must be constant or linear, got '" + c.lr_schedule + "'");
  if (!(c.lr_final >= 0 && c.lr_final <= 1)) fail("train.lr_final must be in [0, 1]");
  if (c.sampled_correction != "none" && c.sampled_correction != "logq")
    fail("train.sampled_correction must be none or logq, got '" + c.sampled_correction + "'");
}

}  // namespace glide::engine
