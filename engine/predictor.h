// A loaded model ready to answer top-k queries from many threads at once: what `glide predict`,
// the REST server and library users call.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/checkpoint.h"
#include "engine/evaluator.h"
#include "engine/output_sampler.h"

namespace glide::engine {

class Predictor {
 public:
  // Loads `path` (weights only). With `lsh`, also builds the LSH tables sampled mode needs.
  explicit Predictor(const std::string& path, bool lsh = true);
  Predictor(std::unique_ptr<Network> net, const Config& config, bool lsh = true);

  // Top-k labels for each input. Thread-safe; parallel inside (TBB).
  void predict(std::span<const data::SparseView> inputs, std::uint32_t k, EvalMode mode,
               std::vector<Prediction>& out) const;
  // Throws glide::Error "input N: ..." when an input is unusable (feature id out of range,
  // non-finite value, ids and values of different lengths).
  void check_input(const data::SparseView& x, std::size_t index) const;

  const Network& network() const { return *net_; }
  // The LSH tables of sampled mode (null without them), for callers that run the output layer
  // themselves (predict_topk_from_hidden: early-exit serving in cache/).
  OutputSampler* sampler() const { return sampler_.get(); }
  const Config& config() const { return config_; }
  bool has_lsh() const { return sampler_ != nullptr; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  Config config_;
  std::unique_ptr<Network> net_;
  std::unique_ptr<OutputSampler> sampler_;
};

}  // namespace glide::engine
