#include "cache/learned_cache.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "engine/kernels.h"
#include "engine/params.h"

namespace glide::cache {

void normalise(const float* x, std::uint32_t n, float* out) {
  double s = 0;
  for (std::uint32_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  const float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
  for (std::uint32_t i = 0; i < n; ++i) out[i] = x[i] * inv;
}

CacheModel::CacheModel(std::uint32_t layer, std::uint32_t dim, std::vector<std::uint32_t> hot)
    : layer_(layer),
      dim_(dim),
      stride_(engine::padded(dim)),
      hot_(std::move(hot)),
      w_((hot_.size() + 1) * stride_),
      b_(hot_.size() + 1, 0.0f) {}

std::size_t CacheModel::bytes() const {
  return w_.size() * sizeof(float) + b_.size() * sizeof(float) +
         hot_.size() * sizeof(std::uint32_t);
}

void CacheModel::logits(const float* x, float* z) const {
  const engine::Kernels& k = engine::kernels();
  const std::uint32_t C = classes();
  for (std::uint32_t c = 0; c < C; ++c) z[c] = k.dot(w_.data() + c * stride_, x, dim_) + b_[c];
}

float CacheModel::lookup(const float* act, std::uint32_t k, engine::Prediction& out, bool* hot,
                         std::vector<float>& scratch) const {
  const std::uint32_t C = classes();
  scratch.resize(stride_ + C);
  float* x = scratch.data();
  float* z = x + stride_;
  normalise(act, dim_, x);
  logits(x, z);
  const float mx = *std::max_element(z, z + C);
  double sum = 0;
  for (std::uint32_t c = 0; c < C; ++c) sum += std::exp(double(z[c] - mx));
  // Best hot classes (the "other" class is C - 1).
  const std::uint32_t H = C - 1, kk = std::min(k, H);
  std::uint32_t best = 0;
  for (std::uint32_t c = 1; c < C; ++c)
    if (z[c] > z[best]) best = c;
  const float conf = static_cast<float>(1.0 / sum);  // exp(z_best - mx) / sum with z_best == mx
  *hot = best < H && kk > 0;
  if (!*hot) return conf;
  out.labels.clear();
  out.scores.clear();
  // Partial selection of the top kk hot classes by logit (ties by label id).
  std::vector<std::uint32_t>& order = out.labels;  // reuse as index buffer
  order.resize(H);
  std::iota(order.begin(), order.end(), 0u);
  auto before = [&](std::uint32_t a, std::uint32_t b) {
    return z[a] > z[b] || (z[a] == z[b] && hot_[a] < hot_[b]);
  };
  std::partial_sort(order.begin(), order.begin() + kk, order.end(), before);
  order.resize(kk);
  for (std::uint32_t& c : order) {
    out.scores.push_back(static_cast<float>(std::exp(double(z[c] - mx)) / sum));
    c = hot_[c];
  }
  return conf;
}

CacheModel CacheModel::from_parameters(std::uint32_t layer, std::uint32_t dim,
                                       std::vector<std::uint32_t> hot,
                                       std::span<const float> weights,
                                       std::span<const float> bias) {
  CacheModel m(layer, dim, std::move(hot));
  const std::uint32_t C = m.classes();
  if (weights.size() != std::size_t{C} * dim || bias.size() != C)
    fail("cache of layer " + std::to_string(layer) + ": parameters do not match its shape");
  for (std::uint32_t c = 0; c < C; ++c)
    std::copy_n(weights.data() + std::size_t{c} * dim, dim, m.w_.data() + c * m.stride_);
  std::copy(bias.begin(), bias.end(), m.b_.begin());
  return m;
}

CacheTrainer::CacheTrainer(std::uint32_t layer, std::uint32_t dim, CacheOptions options)
    : options_(options), model_(layer, dim, {}), next_refresh_(256) {
  x_.resize(engine::padded(dim));
}

CacheTrainer::CacheTrainer(const CacheState& state, CacheOptions options)
    : options_(options), model_(*state.model), examples_(state.model->examples) {
  x_.resize(engine::padded(model_.dim_));
  for (const auto& [label, count] : state.counts) counts_[label] = count;
  for (std::uint32_t c = 0; c < model_.hot_.size(); ++c) class_of_[model_.hot_[c]] = c;
  next_refresh_ = examples_ + (model_.hot_.empty() ? 256 : options_.hot_refresh_every);
  versions_ = state.model->version;
}

CacheState CacheTrainer::state() const {
  CacheState s;
  s.model = snapshot();
  s.counts.reserve(counts_.size());
  for (const auto& [label, count] : counts_) s.counts.push_back({label, static_cast<float>(count)});
  std::sort(s.counts.begin(), s.counts.end());
  return s;
}

void CacheTrainer::add(const float* act, std::uint32_t label) {
  counts_[label] += 1;
  ++examples_;
  ++since_publish_;
  if (examples_ >= next_refresh_) {
    refresh_hot_set();
    next_refresh_ = examples_ + options_.hot_refresh_every;
  }
  const std::uint32_t C = model_.classes(), other = C - 1;
  const auto it = class_of_.find(label);
  const std::uint32_t y = it == class_of_.end() ? other : it->second;
  normalise(act, model_.dim_, x_.data());
  z_.resize(C);
  model_.logits(x_.data(), z_.data());
  const float mx = *std::max_element(z_.begin(), z_.end());
  double sum = 0;
  for (float& v : z_) sum += (v = std::exp(v - mx));
  const engine::Kernels& k = engine::kernels();
  for (std::uint32_t c = 0; c < C; ++c) {
    const float g = static_cast<float>(z_[c] / sum) - (c == y ? 1.0f : 0.0f);
    if (std::abs(g) < 1e-4f) continue;  // most classes: nothing worth a row update
    k.axpy(-options_.lr * g, x_.data(), model_.w_.data() + c * model_.stride_, model_.dim_);
    model_.b_[c] -= options_.lr * g;
  }
}

void CacheTrainer::refresh_hot_set() {
  std::vector<std::pair<double, std::uint32_t>> ranked;
  ranked.reserve(counts_.size());
  for (const auto& [label, count] : counts_)
    if (count >= 1.5) ranked.push_back({count, label});  // seen more than once
  const std::size_t H = std::min<std::size_t>(options_.hot_labels, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + H, ranked.end(),
                    [](const auto& a, const auto& b) {
                      return a.first > b.first || (a.first == b.first && a.second < b.second);
                    });
  std::vector<std::uint32_t> hot;
  for (std::size_t i = 0; i < H; ++i) hot.push_back(ranked[i].second);
  std::sort(hot.begin(), hot.end());
  CacheModel fresh(model_.layer_, model_.dim_, hot);
  // Labels that stay hot keep what they learned; new ones start at zero; "other" carries over.
  std::unordered_map<std::uint32_t, std::uint32_t> class_of;
  for (std::uint32_t c = 0; c < hot.size(); ++c) {
    class_of[hot[c]] = c;
    const auto it = class_of_.find(hot[c]);
    if (it == class_of_.end()) continue;
    std::copy_n(model_.w_.data() + it->second * model_.stride_, model_.stride_,
                fresh.w_.data() + c * fresh.stride_);
    fresh.b_[c] = model_.b_[it->second];
  }
  const std::uint32_t old_other = model_.classes() - 1, new_other = fresh.classes() - 1;
  std::copy_n(model_.w_.data() + old_other * model_.stride_, model_.stride_,
              fresh.w_.data() + new_other * fresh.stride_);
  fresh.b_[new_other] = model_.b_[old_other];
  model_ = std::move(fresh);
  class_of_ = std::move(class_of);
  // Popularity drifts: old counts fade; forget labels that faded away.
  for (auto it = counts_.begin(); it != counts_.end();) {
    it->second *= options_.count_decay;
    it = it->second < 0.25 ? counts_.erase(it) : std::next(it);
  }
}

std::shared_ptr<const CacheModel> CacheTrainer::snapshot() const {
  auto m = std::make_shared<CacheModel>(model_);
  m->examples = examples_;
  m->version = ++versions_;
  since_publish_ = 0;
  return m;
}

ThresholdTuner::ThresholdTuner(double target, double initial)
    : target_(target), m_(-std::log(1 - initial)), threshold_(initial) {}

void ThresholdTuner::observe(bool agreed) {
  std::lock_guard lock(mutex_);
  ++checks_;
  agreed_ += agreed;
  constexpr double kUp = 0.5;
  // Equilibrium where (1 - a) * up = a * down, i.e. a = up / (up + down): with down below,
  // a = (1 + target) / 2 (half the allowed disagreement).
  const double a = (1 + target_) / 2;
  const double down = kUp * (1 - a) / a;
  m_ += agreed ? -down : kUp;
  m_ = std::clamp(m_, -std::log(1 - 0.5), -std::log(1e-6));
  threshold_.store(1 - std::exp(-m_), std::memory_order_relaxed);
}

std::uint64_t ThresholdTuner::checks() const {
  std::lock_guard lock(mutex_);
  return checks_;
}
std::uint64_t ThresholdTuner::agreed() const {
  std::lock_guard lock(mutex_);
  return agreed_;
}

}  // namespace glide::cache
