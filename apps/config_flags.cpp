#include "apps/config_flags.h"

#include <sstream>

#include "common/error.h"
#include "common/file_util.h"

namespace glide::cli {

void add_config_flags(cxxopts::Options& o) {
  o.add_options("model")("config", "JSON config file (flags override it)",
                         cxxopts::value<std::string>())(
      "hidden", "hidden layer sizes, e.g. 128 or 1024,512,128", cxxopts::value<std::string>())(
      "hidden-sampling",
      "per hidden layer: dense or lsh, e.g. dense,lsh,dense (the first layer is always dense)",
      cxxopts::value<std::string>())(
      "hidden-sparsity", "fraction of a sampled hidden layer's neurons active per sample",
      cxxopts::value<double>())("sampling",
                                "output neurons computed in training: lsh, random or dense",
                                cxxopts::value<std::string>())(
      "sparsity", "fraction of output neurons active per sample", cxxopts::value<double>())(
      "prior-fraction",
      "sampled inference: share of the labels scored that are the largest-bias ones",
      cxxopts::value<double>())("loss", "softmax or sigmoid", cxxopts::value<std::string>())(
      "lsh-family", "simhash, wta, dwta or doph", cxxopts::value<std::string>())(
      "K", "hash values per table", cxxopts::value<std::uint32_t>())(
      "L", "hash tables", cxxopts::value<std::uint32_t>())("range-pow", "log2 of buckets per table",
                                                           cxxopts::value<std::uint32_t>())(
      "bucket-size", "neuron ids kept per bucket", cxxopts::value<std::uint32_t>())(
      "lsh-strategy", "union, topk or threshold", cxxopts::value<std::string>())(
      "model-seed", "seed of weights and hash functions", cxxopts::value<std::uint64_t>());
  o.add_options("training")("optimizer", "adam or sgd", cxxopts::value<std::string>())(
      "precision",
      "output layer: fp32, bf16-act (bf16 activations), bf16 (bf16 weights and Adam state) or "
      "bf16-w (bf16 weights, fp32 Adam state)",
      cxxopts::value<std::string>())("lr", "learning rate", cxxopts::value<double>())(
      "batch", "mini-batch size", cxxopts::value<std::uint32_t>())(
      "epochs", "epochs (may be fractional)", cxxopts::value<double>())(
      "threads", "worker threads (0: all cores)", cxxopts::value<std::uint32_t>())(
      "seed", "seed of the visiting order", cxxopts::value<std::uint64_t>())(
      "rebuild-every", "batches before the first table refresh", cxxopts::value<std::uint32_t>())(
      "rebuild-growth", "factor by which the refresh interval grows", cxxopts::value<double>())(
      "rehash-every", "samples between new hash functions (0: never)",
      cxxopts::value<std::uint64_t>())("lr-schedule",
                                       "constant or linear (to lr-final x lr at the last epoch)",
                                       cxxopts::value<std::string>())(
      "lr-final", "final lr as a fraction of lr (linear schedule)", cxxopts::value<double>())(
      "sampled-correction", "none or logq: correct sampled negatives' logits by -log q",
      cxxopts::value<std::string>())("max-seconds", "stop training after this wall time",
                                     cxxopts::value<double>())(
      "eval-every", "batches between test evaluations (0: each epoch)",
      cxxopts::value<std::uint32_t>())("eval-points", "test points per evaluation during training",
                                       cxxopts::value<std::uint32_t>());
}

namespace {
std::vector<std::uint32_t> parse_sizes(const std::string& s) {
  std::vector<std::uint32_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      std::size_t used = 0;
      const unsigned long v = std::stoul(item, &used);
      if (used != item.size() || v == 0 || v > 65536) throw std::invalid_argument(item);
      out.push_back(static_cast<std::uint32_t>(v));
    } catch (const std::exception&) {
      fail("--hidden: expected sizes like 128 or 1024,512,128, got '" + s + "'");
    }
  }
  if (out.empty()) fail("--hidden: expected at least one size");
  return out;
}

// "dense,lsh,dense": one mode per hidden layer; other settings keep what the config file (or the
// defaults) gave each layer.
void parse_hidden_sampling(const std::string& s, std::vector<engine::HiddenSampling>& layers) {
  std::vector<std::string> modes;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item != "dense" && item != "lsh")
      fail("--hidden-sampling: expected dense or lsh per layer (e.g. dense,lsh), got '" + item +
           "' in '" + s + "'");
    modes.push_back(item);
  }
  layers.resize(modes.size());
  for (std::size_t l = 0; l < modes.size(); ++l) layers[l].sampled = modes[l] == "lsh";
}
}  // namespace

void apply_config_flags(const cxxopts::ParseResult& r, engine::Config& c) {
  if (r.count("config")) {
    const std::string path = r["config"].as<std::string>();
    const auto bytes = read_file_bytes(path);
    engine::merge_json(c, std::string(bytes.begin(), bytes.end()), path);
  }
  auto& n = c.net;
  auto& t = c.train;
  if (r.count("hidden")) n.hidden = parse_sizes(r["hidden"].as<std::string>());
  if (r.count("hidden-sampling"))
    parse_hidden_sampling(r["hidden-sampling"].as<std::string>(), n.hidden_sampling);
  if (r.count("hidden-sparsity")) {
    if (n.hidden_sampling.empty()) fail("--hidden-sparsity needs sampled hidden layers");
    for (auto& h : n.hidden_sampling) h.sparsity = r["hidden-sparsity"].as<double>();
  }
  if (r.count("prior-fraction")) n.prior_fraction = r["prior-fraction"].as<double>();
  if (r.count("sampling")) n.sampling = engine::parse_sampling(r["sampling"].as<std::string>());
  if (r.count("sparsity")) n.sparsity = r["sparsity"].as<double>();
  if (r.count("loss")) n.loss = engine::parse_loss(r["loss"].as<std::string>());
  if (r.count("lsh-family")) n.lsh.family = r["lsh-family"].as<std::string>();
  if (r.count("K")) n.lsh.K = r["K"].as<std::uint32_t>();
  if (r.count("L")) n.lsh.L = r["L"].as<std::uint32_t>();
  if (r.count("range-pow")) n.lsh.range_pow = r["range-pow"].as<std::uint32_t>();
  if (r.count("bucket-size")) n.lsh.bucket_size = r["bucket-size"].as<std::uint32_t>();
  if (r.count("lsh-strategy")) n.lsh.strategy = r["lsh-strategy"].as<std::string>();
  if (r.count("model-seed")) n.seed = r["model-seed"].as<std::uint64_t>();
  if (r.count("optimizer")) t.optimizer = r["optimizer"].as<std::string>();
  if (r.count("precision")) t.precision = r["precision"].as<std::string>();
  if (r.count("lr")) t.lr = r["lr"].as<double>();
  if (r.count("batch")) t.batch = r["batch"].as<std::uint32_t>();
  if (r.count("epochs")) t.epochs = r["epochs"].as<double>();
  if (r.count("threads")) t.threads = r["threads"].as<std::uint32_t>();
  if (r.count("seed")) t.seed = r["seed"].as<std::uint64_t>();
  if (r.count("rebuild-every")) t.rebuild_every = r["rebuild-every"].as<std::uint32_t>();
  if (r.count("rebuild-growth")) t.rebuild_growth = r["rebuild-growth"].as<double>();
  if (r.count("rehash-every")) t.rehash_every = r["rehash-every"].as<std::uint64_t>();
  if (r.count("lr-schedule")) t.lr_schedule = r["lr-schedule"].as<std::string>();
  if (r.count("lr-final")) t.lr_final = r["lr-final"].as<double>();
  if (r.count("sampled-correction"))
    t.sampled_correction = r["sampled-correction"].as<std::string>();
  if (r.count("max-seconds")) t.max_seconds = r["max-seconds"].as<double>();
  if (r.count("eval-every")) t.eval_every = r["eval-every"].as<std::uint32_t>();
  if (r.count("eval-points")) t.eval_points = r["eval-points"].as<std::uint32_t>();
  engine::validate(t);
}

void reject_unmatched(const cxxopts::ParseResult& r) {
  if (!r.unmatched().empty()) fail("unexpected argument '" + r.unmatched().front() + "'");
}

}  // namespace glide::cli
