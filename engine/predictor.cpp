#include "engine/predictor.h"

#include <cmath>

#include "common/error.h"

namespace glide::engine {

Predictor::Predictor(const std::string& path, bool lsh) : path_(path) {
  LoadedModel m = load_model(path, /*optimizer_state=*/false);
  config_ = m.config;
  net_ = std::move(m.net);
  if (lsh) sampler_ = make_inference_lsh_sampler(config_, *net_);
}

Predictor::Predictor(std::unique_ptr<Network> net, const Config& config, bool lsh)
    : config_(config), net_(std::move(net)) {
  if (lsh) sampler_ = make_inference_lsh_sampler(config_, *net_);
}

void Predictor::check_input(const data::SparseView& x, std::size_t index) const {
  const std::string where = "input " + std::to_string(index);
  if (x.ids.size() != x.values.size())
    fail(where, std::to_string(x.ids.size()) + " indices but " + std::to_string(x.values.size()) +
                    " values");
  for (std::size_t q = 0; q < x.ids.size(); ++q) {
    if (x.ids[q] >= config_.net.num_features)
      fail(where, "feature id " + std::to_string(x.ids[q]) + " is out of range (the model has " +
                      std::to_string(config_.net.num_features) + " features)");
    if (!std::isfinite(x.values[q]))
      fail(where, "value of feature " + std::to_string(x.ids[q]) + " is not finite");
  }
}

void Predictor::predict(std::span<const data::SparseView> inputs, std::uint32_t k, EvalMode mode,
                        std::vector<Prediction>& out) const {
  if (k == 0) fail("k must be at least 1");
  for (std::size_t i = 0; i < inputs.size(); ++i) check_input(inputs[i], i);
  if (mode == EvalMode::kSampled && !sampler_)
    fail("sampled prediction needs LSH tables (load with lsh)");
  predict_topk(*net_, inputs, std::min<std::uint32_t>(k, net_->num_labels()), mode, sampler_.get(),
               out);
}

}  // namespace glide::engine
