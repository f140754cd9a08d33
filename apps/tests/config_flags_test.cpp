// The command-line config flags (apps/config_flags.h) against the JSON keys: a command line that
// gives every flag yields the Config a JSON file with the same values yields; flags override a
// --config file; errors name the flag or the file.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/config_flags.h"
#include "common/error.h"

using namespace glide;

namespace {

engine::Config from_command_line(std::vector<std::string> args) {
  cxxopts::Options o("test", "config flags");
  cli::add_config_flags(o);
  std::string program = "test";
  std::vector<char*> argv = {program.data()};
  for (std::string& a : args) argv.push_back(a.data());
  const auto r = o.parse(static_cast<int>(argv.size()), argv.data());
  cli::reject_unmatched(r);
  engine::Config c;
  cli::apply_config_flags(r, c);
  return c;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("every config flag gives the Config its JSON key gives") {
  const std::vector<std::string> args = {"--hidden",
                                         "64,48,32",
                                         "--hidden-sampling",
                                         "dense,lsh,dense",
                                         "--hidden-sparsity",
                                         "0.25",
                                         "--sampling",
                                         "random",
                                         "--lsh-negatives",
                                         "sample",
                                         "--lsh-query-every",
                                         "2",
                                         "--sparsity",
                                         "0.1",
                                         "--prior-fraction",
                                         "0.3",
                                         "--loss",
                                         "sigmoid",
                                         "--lsh-family",
                                         "simhash",
                                         "-K",
                                         "5",
                                         "-L",
                                         "9",
                                         "--range-pow",
                                         "10",
                                         "--bucket-size",
                                         "16",
                                         "--lsh-strategy",
                                         "topk",
                                         "--model-seed",
                                         "5",
                                         "--optimizer",
                                         "sgd",
                                         "--output-optimizer",
                                         "adam",
                                         "--output-lr",
                                         "0.125",
                                         "--precision",
                                         "bf16-w",
                                         "--lr",
                                         "0.5",
                                         "--batch",
                                         "64",
                                         "--epochs",
                                         "2.5",
                                         "--threads",
                                         "3",
                                         "--seed",
                                         "9",
                                         "--rebuild-every",
                                         "7",
                                         "--rebuild-growth",
                                         "1.5",
                                         "--rehash-every",
                                         "1000",
                                         "--lr-schedule",
                                         "constant",
                                         "--lr-final",
                                         "0.2",
                                         "--lr-decay",
                                         "0.5",
                                         "--sampled-correction",
                                         "none",
                                         "--max-seconds",
                                         "12.5",
                                         "--eval-every",
                                         "11",
                                         "--eval-points",
                                         "99",
                                         "--wide",
                                         "off",
                                         "--wide-max-per-label",
                                         "64",
                                         "--wide-min-weight",
                                         "0.25",
                                         "--wide-init",
                                         "12.5",
                                         "--wide-norm-power",
                                         "0.5",
                                         "--wide-share-rounds",
                                         "2",
                                         "--wide-contrast",
                                         "0",
                                         "--wide-tail-points",
                                         "7",
                                         "--output-eps",
                                         "0.5",
                                         "--wide-lr",
                                         "0.25"};
  // --hidden-sparsity sets every layer's sparsity, dense ones included.
  const char* json = R"({
    "network": {"hidden": [64, 48, 32],
                "hidden_sampling": [{"mode": "dense", "sparsity": 0.25},
                                    {"mode": "lsh", "sparsity": 0.25},
                                    {"mode": "dense", "sparsity": 0.25}],
                "sampling": "random", "lsh_negatives": "sample", "lsh_query_every": 2,
                "sparsity": 0.1,
                "prior_fraction": 0.3, "loss": "sigmoid",
                "lsh": {"family": "simhash", "K": 5, "L": 9, "range_pow": 10, "bucket_size": 16,
                        "strategy": "topk"},
                "seed": 5, "wide": "off", "wide_max_per_label": 64, "wide_min_weight": 0.25,
                "wide_init": 12.5, "wide_norm_power": "0.5", "wide_share_rounds": "2",
                "wide_contrast": "0", "wide_tail_points": 7},
    "train": {"optimizer": "sgd", "output_optimizer": "adam", "output_lr": 0.125,
              "output_eps": 0.5, "wide_lr": 0.25,
              "precision": "bf16-w", "lr": 0.5, "batch": 64, "epochs": 2.5,
              "threads": 3, "seed": 9, "rebuild_every": 7, "rebuild_growth": 1.5,
              "rehash_every": 1000, "lr_schedule": "constant", "lr_final": 0.2,
              "lr_decay": 0.5,
              "sampled_correction": "none", "max_seconds": 12.5, "eval_every": 11,
              "eval_points": 99}})";
  const engine::Config by_flags = from_command_line(args);
  CHECK(by_flags == engine::config_from_json(json, "same.json"));
  for (const engine::ConfigFlag& f : engine::config_flags()) {  // the test covers every flag
    CAPTURE(f.name);
    const std::string flag = (f.name.size() == 1 ? "-" : "--") + f.name;  // cxxopts: -K, --lr
    CHECK(std::find(args.begin(), args.end(), flag) != args.end());
  }
  // Through a config file, the same.
  const std::string path = write_temp("cfg-flags-test-same.json", json);
  CHECK(from_command_line({"--config", path}) == by_flags);
  std::filesystem::remove(path);
}

TEST_CASE("flags override the config file, and errors name the flag or the file") {
  const std::string path =
      write_temp("cfg-flags-test-base.json", R"({"train": {"lr": 0.1, "batch": 32}})");
  const engine::Config c = from_command_line({"--config", path, "--lr", "0.5"});
  CHECK(c.train.lr == 0.5);
  CHECK(c.train.batch == 32);
  std::filesystem::remove(path);

  const std::string bad = write_temp("cfg-flags-test-bad.json", R"({"train": {"lr": 20}})");
  CHECK_THROWS_WITH_AS(from_command_line({"--config", bad}),
                       (bad + ": config key 'train.lr' must be in [0, 10), got 20").c_str(), Error);
  std::filesystem::remove(bad);
  CHECK_THROWS_WITH_AS(from_command_line({"-K", "40"}), "-K must be in 1..32, got 40", Error);
  CHECK_THROWS_WITH_AS(from_command_line({"--optimizer", "lbfgs"}),
                       "--optimizer must be adam, sgd or adagrad, got 'lbfgs'", Error);
  CHECK_THROWS_WITH_AS(from_command_line({"--hidden", "128,0"}),
                       "--hidden sizes must be in 1..65536, got 0", Error);
}
