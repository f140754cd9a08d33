// The configuration's field table against references: a config written by the string-typed
// code before the table (every field non-default) reads back to the same fields and the same
// text; every flag sets the field its JSON key sets; errors name the key, the file and the
// accepted values; and the engine accepts exactly the LSH settings the hash families accept.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "engine/config.h"
#include "hashing/hash_config.h"

using namespace glide;
using namespace glide::engine;

namespace {

// What `glide train --print-config` wrote before the config was typed, given a config file that
// sets every field to something other than its default (the dense layers keep theirs: a dense
// layer is written as its mode alone).
const char* const kWrittenBefore = R"({
  "network": {
    "hidden": [
      64,
      48,
      32
    ],
    "hidden_sampling": [
      {
        "mode": "dense"
      },
      {
        "lsh": {
          "K": 3,
          "L": 12,
          "bin_size": 6,
          "bucket_size": 40,
          "family": "wta",
          "insert_policy": "reservoir",
          "min_count": 3,
          "range_pow": 7,
          "simhash_ratio": 5,
          "strategy": "threshold"
        },
        "mode": "lsh",
        "sparsity": 0.25
      },
      {
        "mode": "dense"
      }
    ],
    "loss": "sigmoid",
    "lsh": {
      "K": 5,
      "L": 9,
      "bin_size": 12,
      "bucket_size": 16,
      "family": "simhash",
      "insert_policy": "reservoir",
      "min_count": 4,
      "range_pow": 10,
      "simhash_ratio": 4,
      "strategy": "topk"
    },
    "lsh_negatives": "sample",
    "lsh_query_every": 2,
    "num_features": 300,
    "num_labels": 200,
    "prior_fraction": 0.3,
    "sampling": "random",
    "seed": 5,
    "sparsity": 0.1,
    "wide": "off",
    "wide_contrast": "1",
    "wide_init": 12.5,
    "wide_max_per_label": 64,
    "wide_min_weight": 0.25,
    "wide_norm_power": "0.75",
    "wide_share_rounds": "2",
    "wide_tail_points": 7
  },
  "train": {
    "batch": 64,
    "beta1": 0.8,
    "beta2": 0.99,
    "epochs": 2.5,
    "eps": 1e-06,
    "eval_every": 11,
    "eval_points": 99,
    "lr": 0.5,
    "lr_decay": 0.5,
    "lr_final": 0.2,
    "lr_schedule": "constant",
    "max_seconds": 12.5,
    "optimizer": "sgd",
    "output_eps": 0.5,
    "output_lr": 0.125,
    "output_optimizer": "adam",
    "precision": "bf16-w",
    "rebuild_every": 7,
    "rebuild_growth": 1.5,
    "rehash_every": 1000,
    "sampled_correction": "none",
    "seed": 9,
    "threads": 3,
    "wide_lr": 0.25
  }
})";

// The same config, field by field.
Config every_field_set() {
  using hashing::HashKind;
  using hashing::InsertPolicy;
  using hashing::SampleStrategy;
  Config c;
  NetworkConfig& n = c.net;
  n.num_features = 300;
  n.num_labels = 200;
  n.hidden = {64, 48, 32};
  n.hidden_sampling.resize(3);
  HiddenSampling& h = n.hidden_sampling[1];
  h.sampled = true;
  h.sparsity = 0.25;
  h.lsh = {.family = HashKind::kWta,
           .K = 3,
           .L = 12,
           .range_pow = 7,
           .bucket_size = 40,
           .insert_policy = InsertPolicy::kReservoir,
           .simhash_ratio = 5,
           .bin_size = 6,
           .strategy = SampleStrategy::kThreshold,
           .min_count = 3};
  n.loss = LossKind::kSigmoid;
  n.sampling = OutputSampling::kRandom;
  n.lsh_negatives = LshNegatives::kSample;
  n.lsh_query_every = 2;
  n.sparsity = 0.1;
  n.prior_fraction = 0.3;
  n.lsh = {.family = HashKind::kSimHash,
           .K = 5,
           .L = 9,
           .range_pow = 10,
           .bucket_size = 16,
           .insert_policy = InsertPolicy::kReservoir,
           .simhash_ratio = 4,
           .bin_size = 12,
           .strategy = SampleStrategy::kTopK,
           .min_count = 4};
  n.seed = 5;
  n.wide = WideMode::kOff;
  n.wide_init = 12.5;
  n.wide_max_per_label = 64;
  n.wide_min_weight = 0.25;
  n.wide_norm_power = 0.75;
  n.wide_share_rounds = 2;
  n.wide_contrast = 1;
  n.wide_tail_points = 7;
  TrainConfig& t = c.train;
  t.optimizer = Optimizer::kSgd;
  t.output_optimizer = Optimizer::kAdam;
  t.output_lr = 0.125;
  t.output_eps = 0.5;
  t.wide_lr = 0.25;
  t.precision = TrainPrecision::kBF16W;
  t.lr = 0.5;
  t.lr_schedule = LrSchedule::kConstant;
  t.lr_final = 0.2;
  t.lr_decay = 0.5;
  t.beta1 = 0.8;
  t.beta2 = 0.99;
  t.eps = 1e-6;
  t.batch = 64;
  t.epochs = 2.5;
  t.threads = 3;
  t.seed = 9;
  t.rebuild_every = 7;
  t.rebuild_growth = 1.5;
  t.rehash_every = 1000;
  t.sampled_correction = SampledCorrection::kNone;
  t.max_seconds = 12.5;
  t.eval_every = 11;
  t.eval_points = 99;
  return c;
}

#define CHECK_ERROR(expr, text) CHECK_THROWS_WITH_AS(expr, text, glide::Error)
#define CHECK_ERROR_HAS(expr, text) \
  CHECK_THROWS_WITH_AS(expr, doctest::Contains(text), glide::Error)

}  // namespace

TEST_CASE("a config written before the field table reads back to the same fields and text") {
  const Config expected = every_field_set();
  const Config read = config_from_json(kWrittenBefore, "before.json");
  CHECK(read == expected);
  CHECK(to_json(read) == kWrittenBefore);
  // Every field differs from its default, so a field the table missed could not round-trip.
  CHECK(config_from_json(to_json(expected), "round trip") == expected);
  CHECK(config_from_json(to_json(expected, -1), "round trip") == expected);
  Config defaults;  // with the two sizes that have no default (0 is out of range)
  defaults.net.num_features = defaults.net.num_labels = 1;
  CHECK(config_from_json(to_json(defaults), "defaults") == defaults);
}

TEST_CASE("the flags are those of before the table, and each sets the field its key sets") {
  // Flag -> (JSON value, the key path it must set).
  struct Expect {
    const char* value;
    const char* key;
  };
  const std::vector<std::pair<std::string, Expect>> expected = {
      {"hidden", {"[64, 32]", "network.hidden"}},
      {"sampling", {"\"dense\"", "network.sampling"}},
      {"lsh-negatives", {"\"sample\"", "network.lsh_negatives"}},
      {"lsh-query-every", {"2", "network.lsh_query_every"}},
      {"sparsity", {"0.25", "network.sparsity"}},
      {"prior-fraction", {"0.75", "network.prior_fraction"}},
      {"loss", {"\"sigmoid\"", "network.loss"}},
      {"lsh-family", {"\"doph\"", "network.lsh.family"}},
      {"K", {"7", "network.lsh.K"}},
      {"L", {"7", "network.lsh.L"}},
      {"range-pow", {"30", "network.lsh.range_pow"}},
      {"bucket-size", {"7", "network.lsh.bucket_size"}},
      {"lsh-strategy", {"\"threshold\"", "network.lsh.strategy"}},
      {"model-seed", {"7", "network.seed"}},
      {"wide", {"\"off\"", "network.wide"}},
      {"wide-max-per-label", {"7", "network.wide_max_per_label"}},
      {"wide-min-weight", {"0.25", "network.wide_min_weight"}},
      {"wide-init", {"7.5", "network.wide_init"}},
      {"wide-norm-power", {"\"0.25\"", "network.wide_norm_power"}},
      {"wide-share-rounds", {"\"1\"", "network.wide_share_rounds"}},
      {"wide-contrast", {"\"1\"", "network.wide_contrast"}},
      {"wide-tail-points", {"7", "network.wide_tail_points"}},
      {"output-eps", {"0.25", "train.output_eps"}},
      {"wide-lr", {"0.25", "train.wide_lr"}},
      {"optimizer", {"\"sgd\"", "train.optimizer"}},
      {"output-optimizer", {"\"sgd\"", "train.output_optimizer"}},
      {"output-lr", {"0.25", "train.output_lr"}},
      {"precision", {"\"bf16-act\"", "train.precision"}},
      {"lr", {"0.25", "train.lr"}},
      {"batch", {"7", "train.batch"}},
      {"epochs", {"0.25", "train.epochs"}},
      {"threads", {"7", "train.threads"}},
      {"seed", {"7", "train.seed"}},
      {"rebuild-every", {"7", "train.rebuild_every"}},
      {"rebuild-growth", {"1.25", "train.rebuild_growth"}},
      {"rehash-every", {"7", "train.rehash_every"}},
      {"lr-schedule", {"\"constant\"", "train.lr_schedule"}},
      {"lr-final", {"0.25", "train.lr_final"}},
      {"lr-decay", {"0.25", "train.lr_decay"}},
      {"sampled-correction", {"\"none\"", "train.sampled_correction"}},
      {"max-seconds", {"7.5", "train.max_seconds"}},
      {"eval-every", {"7", "train.eval_every"}},
      {"eval-points", {"7", "train.eval_points"}},
  };
  std::set<std::string> names;
  for (const ConfigFlag& f : config_flags()) names.insert(f.name);
  CHECK(names.size() == config_flags().size());  // no flag twice
  std::set<std::string> expected_names;
  for (const auto& [name, e] : expected) expected_names.insert(name);
  CHECK(names == expected_names);

  for (const ConfigFlag& f : config_flags()) {
    CAPTURE(f.name);
    auto it = std::find_if(expected.begin(), expected.end(),
                           [&](const auto& e) { return e.first == f.name; });
    REQUIRE(it != expected.end());
    const Expect& e = it->second;
    CHECK(f.key == e.key);
    CHECK(!f.help.empty());
    // The key path as a JSON patch: "network.lsh.K" -> {"network": {"lsh": {"K": 7}}}.
    std::string json = e.value;
    for (std::string path = f.key;;) {
      const std::size_t dot = path.rfind('.');
      json = "{\"" + path.substr(dot + 1) + "\": " + json + "}";
      if (dot == std::string::npos) break;
      path.resize(dot);
    }
    const Config by_json = config_from_json(json, "patch.json");
    FlagValue value;
    const std::string text = e.value;
    switch (f.type) {
      case ConfigFlag::Type::kU32:
        value = static_cast<std::uint32_t>(std::stoul(text));
        break;
      case ConfigFlag::Type::kU64:
        value = static_cast<std::uint64_t>(std::stoull(text));
        break;
      case ConfigFlag::Type::kReal:
        value = std::stod(text);
        break;
      case ConfigFlag::Type::kText:  // "[64, 32]" -> "64,32"; "\"sgd\"" -> "sgd"
        value = text[0] == '[' ? std::string("64,32") : text.substr(1, text.size() - 2);
        break;
    }
    Config by_flag;
    set_config_flag(by_flag, f.name, value);
    CHECK(by_flag == by_json);
    CHECK(by_flag != Config{});
  }
}

TEST_CASE("an unknown key, a wrong type or a value out of range names the key and the file") {
  CHECK_ERROR(config_from_json(R"({"network": {"lsh": {"KK": 3}}})", "f.json"),
              "f.json: unknown config key 'network.lsh.KK'");
  CHECK_ERROR(config_from_json(R"({"train": {"lr": 20}})", "f.json"),
              "f.json: config key 'train.lr' must be in [0, 10), got 20");
  CHECK_ERROR(config_from_json(R"({"network": {"lsh": {"range_pow": 31}}})", "f.json"),
              "f.json: config key 'network.lsh.range_pow' must be in 1..30, got 31");
  CHECK_ERROR(config_from_json(R"({"network": {"hidden": [128, 0]}})", "f.json"),
              "f.json: config key 'network.hidden' sizes must be in 1..65536, got 0");
  CHECK_ERROR(
      config_from_json(R"({"network": {"hidden_sampling": [{"mode": "lsh", "sparsity": 2}]}})",
                       "f.json"),
      "f.json: config key 'network.hidden_sampling[0].sparsity' must be in (0, 1], got 2");
  CHECK_ERROR(config_from_json(R"({"train": {"batch": "big"}})", "f.json"),
              "f.json: config key 'train.batch' has the wrong type (\"big\")");
  CHECK_ERROR(config_from_json(R"({"network": {"lsh": 3}})", "f.json"),
              "f.json: config key 'network.lsh' must be a JSON object");
  CHECK_ERROR(config_from_json(R"([1])", "f.json"), "f.json: the config must be a JSON object");

  // A config built in code is checked by the same table (no file to name).
  NetworkConfig n = every_field_set().net;
  n.lsh.K = 40;
  CHECK_ERROR(validate(n), "network.lsh.K must be in 1..32, got 40");
  TrainConfig t;
  t.beta2 = 1;
  CHECK_ERROR(validate(t), "train.beta2 must be in [0, 1), got 1");
  // Flags are named as flags.
  Config c;
  CHECK_ERROR(set_config_flag(c, "lr", 20.0), "--lr must be in [0, 10), got 20");
  CHECK_ERROR(set_config_flag(c, "hidden", std::string("64,x")),
              "--hidden expects sizes like 128 or 1024,512,128, got '64,x'");
  CHECK(c == Config{});  // a rejected value changes nothing
}

TEST_CASE("an unknown name names the field and lists the accepted names") {
  struct Case {
    const char* json;
    const char* error;
  };
  const Case cases[] = {
      {R"({"network": {"loss": "hinge"}})",
       "config key 'network.loss' must be softmax or sigmoid, got 'hinge'"},
      {R"({"network": {"sampling": "all"}})",
       "config key 'network.sampling' must be lsh, random or dense, got 'all'"},
      {R"({"network": {"lsh_negatives": "shared"}})",
       "config key 'network.lsh_negatives' must be sample or batch, got 'shared'"},
      {R"({"network": {"lsh": {"family": "md5"}}})",
       "config key 'network.lsh.family' must be simhash, wta, dwta or doph, got 'md5'"},
      {R"({"network": {"lsh": {"insert_policy": "lru"}}})",
       "config key 'network.lsh.insert_policy' must be fifo or reservoir, got 'lru'"},
      {R"({"network": {"lsh": {"strategy": "all"}}})",
       "config key 'network.lsh.strategy' must be union, topk or threshold, got 'all'"},
      {R"({"network": {"hidden_sampling": [{"mode": "lhs"}]}})",
       "config key 'network.hidden_sampling[0].mode' must be dense or lsh, got 'lhs'"},
      {R"({"train": {"optimizer": "lbfgs"}})",
       "config key 'train.optimizer' must be adam, sgd or adagrad, got 'lbfgs'"},
      {R"({"train": {"precision": "fp16"}})",
       "config key 'train.precision' must be fp32, bf16-act, bf16 or bf16-w, got 'fp16'"},
      {R"({"train": {"lr_schedule": "cosine"}})",
       "config key 'train.lr_schedule' must be constant or linear, got 'cosine'"},
      {R"({"train": {"sampled_correction": "yes"}})",
       "config key 'train.sampled_correction' must be none or logq, got 'yes'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json);
    const std::string error = std::string("f.json: ") + c.error;
    CHECK_ERROR(config_from_json(c.json, "f.json"), error.c_str());
  }
  Config c;
  CHECK_ERROR(set_config_flag(c, "precision", std::string("fp16")),
              "--precision must be fp32, bf16-act, bf16 or bf16-w, got 'fp16'");
  CHECK_ERROR(parse_enum<Optimizer>("lbfgs", "train.optimizer"),
              "train.optimizer must be adam, sgd or adagrad, got 'lbfgs'");
}

TEST_CASE("enum names round trip through name() and parse_enum") {
  for (TrainPrecision p : {TrainPrecision::kF32, TrainPrecision::kBF16Act, TrainPrecision::kBF16,
                           TrainPrecision::kBF16W})
    CHECK(parse_enum<TrainPrecision>(name(p), "p") == p);
  CHECK(std::string(name(TrainPrecision::kBF16Act)) == "bf16-act");
  for (auto k : {hashing::HashKind::kSimHash, hashing::HashKind::kWta, hashing::HashKind::kDwta,
                 hashing::HashKind::kDoph}) {
    CHECK(std::string(name(k)) == hashing::hash_kind_name(k));
    CHECK(parse_enum<hashing::HashKind>(name(k), "k") == k);
  }
}

TEST_CASE("the engine accepts exactly the LSH settings its hash family accepts") {
  using hashing::HashKind;
  auto engine_accepts = [](const LshConfig& l) {
    NetworkConfig n;
    n.num_features = 10;
    n.num_labels = 10;
    n.lsh = l;
    try {
      validate(n);
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  auto hashing_accepts = [](const LshConfig& l) {
    hashing::HashConfig h;
    h.kind = l.family;
    h.dim = 128;
    h.K = l.K;
    h.L = l.L;
    h.range_pow = l.range_pow;
    h.sparse_ratio = l.simhash_ratio;
    h.bin_size = l.bin_size;
    try {
      h.validate();
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  int accepted = 0, rejected = 0;
  for (HashKind kind : {HashKind::kSimHash, HashKind::kWta, HashKind::kDwta, HashKind::kDoph}) {
    for (std::uint32_t v :
         {0u, 1u, 2u, 3u, 24u, 25u, 29u, 30u, 31u, 32u, 1024u, 1025u, 4096u, 4097u}) {
      for (int field = 0; field < 3; ++field) {
        LshConfig l;
        l.family = kind;
        (field == 0 ? l.range_pow : field == 1 ? l.simhash_ratio : l.bin_size) = v;
        CAPTURE(name(kind));
        CAPTURE(field);
        CAPTURE(v);
        const bool ok = engine_accepts(l);
        CHECK(ok == hashing_accepts(l));
        (ok ? accepted : rejected)++;
      }
    }
  }
  CHECK(accepted > 0);
  CHECK(rejected > 0);
}
