#include "cache/learned_cache.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

const char* form_name(CacheForm form) {
  return form == CacheForm::kCentroid ? "centroid" : "linear";
}

CacheForm parse_form(const std::string& name) {
  if (name == "linear") return CacheForm::kLinear;
  if (name == "centroid") return CacheForm::kCentroid;
  fail("unknown cache form '" + name + "' (linear or centroid)");
}

CacheModel::CacheModel(std::uint32_t layer, std::uint32_t dim, std::vector<std::uint32_t> hot,
                       CacheForm form)
    : layer_(layer),
      dim_(dim),
      form_(form),
      stride_(engine::padded(dim)),
      hot_(std::move(hot)),
      w_((hot_.size() + 1) * stride_),
      b_(hot_.size() + 1, 0.0f) {}

std::size_t CacheModel::bytes() const {
  return w_.size() * sizeof(float) + b_.size() * sizeof(float) + q_.size() +
         qscale_.size() * sizeof(float) + hot_.size() * sizeof(std::uint32_t);
}

namespace {
// Compact rows: symmetric int8 (scale: max |v| / 127); the input is quantised to 11-bit integers
// in int16 (scale: max |x| / 1023). A row dot widens 16 int8 weights to int16 and multiplies-adds
// pairs into int32 (SSE2 pmaddwd: 8 products per instruction); |dot| <= 127 * 1023 * dim fits
// int32 for any layer width glide allows.
float quantise_row(const float* v, std::uint32_t n, std::int8_t* q) {
  float m = 0;
  for (std::uint32_t i = 0; i < n; ++i) m = std::max(m, std::abs(v[i]));
  const float scale = m > 0 ? m / 127 : 1, inv = 1 / scale;
  for (std::uint32_t i = 0; i < n; ++i)
    q[i] = static_cast<std::int8_t>(std::lrint(std::clamp(v[i] * inv, -127.0f, 127.0f)));
  return scale;
}
float quantise_input(const float* v, std::uint32_t n, std::int16_t* q) {
  float m = 0;
  for (std::uint32_t i = 0; i < n; ++i) m = std::max(m, std::abs(v[i]));
  const float scale = m > 0 ? m / 1023 : 1, inv = 1 / scale;
  for (std::uint32_t i = 0; i < n; ++i)
    q[i] = static_cast<std::int16_t>(std::lrint(std::clamp(v[i] * inv, -1023.0f, 1023.0f)));
  return scale;
}
// n: a multiple of 16.
std::int32_t dot_q(const std::int8_t* a, const std::int16_t* b, std::size_t n) {
#if defined(__SSE2__)
  __m128i acc = _mm_setzero_si128();
  for (std::size_t i = 0; i < n; i += 16) {
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i sign = _mm_cmpgt_epi8(_mm_setzero_si128(), w);
    const __m128i lo = _mm_unpacklo_epi8(w, sign), hi = _mm_unpackhi_epi8(w, sign);
    acc = _mm_add_epi32(
        acc, _mm_madd_epi16(lo, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i))));
    acc = _mm_add_epi32(
        acc, _mm_madd_epi16(hi, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 8))));
  }
  alignas(16) std::int32_t lanes[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes), acc);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#else
  std::int32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::int32_t(a[i]) * b[i];
  return s;
#endif
}
}  // namespace

void CacheModel::compact() {
  if (form_ != CacheForm::kCentroid || is_compact()) return;
  const std::uint32_t H = classes() - 1;
  qstride_ = (dim_ + 15) / 16 * 16;
  q_.assign(std::size_t{H} * qstride_ + (H ? 0 : 1), 0);  // never empty once compact
  qscale_.resize(H);
  for (std::uint32_t c = 0; c < H; ++c)
    qscale_[c] = quantise_row(w_.data() + c * stride_, dim_, q_.data() + c * qstride_);
  w_ = AlignedArray<float>();
  b_.clear();
  b_.shrink_to_fit();
}

void CacheModel::logits(const float* x, float* z) const {
  const engine::Kernels& k = engine::kernels();
  const std::uint32_t C = classes();
  for (std::uint32_t c = 0; c < C; ++c) z[c] = k.dot(w_.data() + c * stride_, x, dim_) + b_[c];
}

float CacheModel::lookup(const float* act, std::uint32_t k, engine::Prediction& out, bool* hot,
                         std::vector<float>& scratch, float min_confidence) const {
  const std::uint32_t C = classes();
  scratch.resize(stride_ + C);
  float* x = scratch.data();
  float* z = x + stride_;
  normalise(act, dim_, x);
  const std::uint32_t H = C - 1, kk = std::min(k, H);
  const bool centroid = form_ == CacheForm::kCentroid;
  if (centroid && is_compact()) {
    thread_local std::vector<std::int16_t> qx;
    qx.assign(qstride_, 0);
    const float xs = quantise_input(x, dim_, qx.data());
    for (std::uint32_t c = 0; c < H; ++c)
      z[c] = static_cast<float>(dot_q(q_.data() + c * qstride_, qx.data(), qstride_)) * qscale_[c] *
             xs;
    z[H] = -1;  // no "other" class
  } else if (centroid) {
    const engine::Kernels& kern = engine::kernels();
    for (std::uint32_t c = 0; c < H; ++c) z[c] = kern.dot(w_.data() + c * stride_, x, dim_);
    z[H] = -1;
  } else {
    logits(x, z);
  }
  const float mx = *std::max_element(z, z + C);
  double sum = 0;
  if (!centroid)
    for (std::uint32_t c = 0; c < C; ++c) sum += std::exp(double(z[c] - mx));
  // Best hot classes (the "other" class is C - 1).
  std::uint32_t best = 0;
  for (std::uint32_t c = 1; c < C; ++c)
    if (z[c] > z[best]) best = c;
  // Linear: exp(z_best - mx) / sum with z_best == mx. Centroid: the best cosine.
  const float conf = centroid ? z[best] : static_cast<float>(1.0 / sum);
  *hot = best < H && kk > 0 && (!centroid || conf > 0);
  if (!*hot) return conf;
  out.labels.clear();
  out.scores.clear();
  if (conf < min_confidence) {
    out.labels.push_back(hot_[best]);
    out.scores.push_back(centroid ? conf : static_cast<float>(1.0 / sum));
    return conf;
  }
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
    out.scores.push_back(centroid ? z[c] : static_cast<float>(std::exp(double(z[c] - mx)) / sum));
    c = hot_[c];
  }
  return conf;
}

CacheModel CacheModel::from_parameters(std::uint32_t layer, std::uint32_t dim,
                                       std::vector<std::uint32_t> hot,
                                       std::span<const float> weights, std::span<const float> bias,
                                       CacheForm form) {
  CacheModel m(layer, dim, std::move(hot), form);
  const std::uint32_t C = m.classes();
  if (weights.size() != std::size_t{C} * dim || bias.size() != C)
    fail("cache of layer " + std::to_string(layer) + ": parameters do not match its shape");
  for (std::uint32_t c = 0; c < C; ++c)
    std::copy_n(weights.data() + std::size_t{c} * dim, dim, m.w_.data() + c * m.stride_);
  std::copy(bias.begin(), bias.end(), m.b_.begin());
  return m;
}

CacheTrainer::CacheTrainer(std::uint32_t layer, std::uint32_t dim, CacheOptions options)
    : options_(options), model_(layer, dim, {}, options.form), next_refresh_(256) {
  x_.resize(engine::padded(dim));
}

CacheTrainer::CacheTrainer(const CacheState& state, CacheOptions options)
    : options_(options),
      model_(*state.model),
      examples_(state.model->examples),
      counted_(state.model->examples) {
  x_.resize(engine::padded(model_.dim_));
  for (const auto& [label, count] : state.counts) counts_[label] = count;
  for (std::uint32_t c = 0; c < model_.hot_.size(); ++c) class_of_[model_.hot_[c]] = c;
  seen_.assign(model_.classes(), 16);  // a saved centroid moves slowly (1 / 16 per example)
  next_refresh_ = counted_ + (model_.hot_.empty() ? 256 : options_.hot_refresh_every);
  versions_ = state.model->version;
}

CacheState CacheTrainer::state() const {
  CacheState s;
  auto m = std::make_shared<CacheModel>(model_);
  m->examples = examples_;
  m->version = versions_;
  s.model = std::move(m);
  s.counts.reserve(counts_.size());
  for (const auto& [label, count] : counts_) s.counts.push_back({label, static_cast<float>(count)});
  std::sort(s.counts.begin(), s.counts.end());
  return s;
}

void CacheTrainer::count(std::uint32_t label) {
  counts_[label] += 1;
  ++counted_;
  if (counted_ >= next_refresh_) {
    refresh_hot_set();
    next_refresh_ = counted_ + options_.hot_refresh_every;
  }
}

void CacheTrainer::add(const float* act, std::uint32_t label) {
  ++examples_;
  ++since_publish_;
  count(label);
  const std::uint32_t C = model_.classes(), other = C - 1;
  const auto it = class_of_.find(label);
  const std::uint32_t y = it == class_of_.end() ? other : it->second;
  normalise(act, model_.dim_, x_.data());
  if (model_.form_ == CacheForm::kCentroid) {
    if (y == other) return;
    // The row becomes the normalised running mean of its examples (the last 32 or so).
    const std::uint32_t n = seen_[y] = std::min<std::uint32_t>(seen_[y] + 1, 32);
    float* w = model_.w_.data() + y * model_.stride_;
    for (std::uint32_t i = 0; i < model_.dim_; ++i) w[i] += (x_[i] - w[i]) / n;
    normalise(w, model_.dim_, w);
    return;
  }
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

void CacheTrainer::rebuild(std::vector<std::uint32_t> hot) {
  CacheModel fresh(model_.layer_, model_.dim_, std::move(hot), model_.form_);
  std::vector<std::uint32_t> seen(fresh.classes(), 0);
  // Labels that stay hot keep what they learned; new ones start at zero; "other" carries over.
  std::unordered_map<std::uint32_t, std::uint32_t> class_of;
  for (std::uint32_t c = 0; c + 1 < fresh.classes(); ++c) {
    class_of[fresh.hot_[c]] = c;
    const auto it = class_of_.find(fresh.hot_[c]);
    if (it == class_of_.end()) continue;
    std::copy_n(model_.w_.data() + it->second * model_.stride_, model_.stride_,
                fresh.w_.data() + c * fresh.stride_);
    fresh.b_[c] = model_.b_[it->second];
    seen[c] = it->second < seen_.size() ? seen_[it->second] : 0;
  }
  seen_ = std::move(seen);
  const std::uint32_t old_other = model_.classes() - 1, new_other = fresh.classes() - 1;
  std::copy_n(model_.w_.data() + old_other * model_.stride_, model_.stride_,
              fresh.w_.data() + new_other * fresh.stride_);
  fresh.b_[new_other] = model_.b_[old_other];
  model_ = std::move(fresh);
  class_of_ = std::move(class_of);
}

void CacheTrainer::refresh_hot_set() {
  std::vector<std::pair<double, std::uint32_t>> ranked;
  ranked.reserve(counts_.size());
  for (const auto& [label, count] : counts_)
    if (count >= options_.min_count) ranked.push_back({count, label});
  const std::size_t H = std::min<std::size_t>(options_.hot_labels, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + H, ranked.end(),
                    [](const auto& a, const auto& b) {
                      return a.first > b.first || (a.first == b.first && a.second < b.second);
                    });
  std::vector<std::uint32_t> hot;
  for (std::size_t i = 0; i < H; ++i) hot.push_back(ranked[i].second);
  std::sort(hot.begin(), hot.end());
  rebuild(std::move(hot));
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
  m->compact();
  since_publish_ = 0;
  return m;
}

double calibrate_threshold(std::vector<CalibrationRecord> records, double target,
                           double min_weight) {
  constexpr double kMax = 1 - 1e-6;
  std::sort(records.begin(), records.end(),
            [](const auto& a, const auto& b) { return a.confidence > b.confidence; });
  const double want = 1 - (1 - target) / 4;  // a quarter of the allowed disagreement
  double best = kMax, weight = 0, agreed = 0;
  bool enough = false;
  for (std::size_t i = 0; i < records.size(); ++i) {
    weight += records[i].weight;
    agreed += records[i].agreed ? records[i].weight : 0;
    // A threshold takes all records of equal confidence.
    if (i + 1 < records.size() && records[i + 1].confidence == records[i].confidence) continue;
    // One pseudo-disagreement of the records' mean weight: few records (or a few heavy shadow
    // checks) do not prove a low disagreement rate.
    const double pseudo = weight / double(i + 1);
    enough = enough || weight >= min_weight;
    if (weight >= min_weight && agreed >= want * (weight + pseudo))
      best = std::min<double>(best, records[i].confidence);
  }
  return enough ? std::clamp(best, 0.5, kMax) : -1;
}

ThresholdTuner::ThresholdTuner(double target, double initial, std::size_t window,
                               std::size_t recalibrate_every)
    : target_(target),
      window_(window),
      every_(recalibrate_every),
      m_(-std::log(1 - std::clamp(initial, 0.5, 1 - 1e-6))),
      threshold_(1 - std::exp(-m_)) {}

void ThresholdTuner::set(double m) {
  m_ = std::clamp(m, -std::log(1 - 0.5), -std::log(1e-6));
  threshold_.store(1 - std::exp(-m_), std::memory_order_relaxed);
}

void ThresholdTuner::observe(bool agreed) {
  std::lock_guard lock(mutex_);
  ++checks_;
  agreed_ += agreed;
  constexpr double kUp = 0.5;
  // Equilibrium where (1 - a) * up = a * down, i.e. a = up / (up + down): with down below,
  // a = (1 + target) / 2 (half the allowed disagreement).
  const double a = (1 + target_) / 2;
  const double down = kUp * (1 - a) / a;
  set(m_ + (agreed ? -down : kUp));
  if (!agreed) cooldown_ = 16;
}

void ThresholdTuner::record(float confidence, bool agreed, float weight) {
  std::lock_guard lock(mutex_);
  const CalibrationRecord r{confidence, agreed, weight};
  if (records_.size() < window_) {
    records_.push_back(r);
  } else {
    records_[next_] = r;
    next_ = (next_ + 1) % window_;
  }
  if (++since_ < every_) return;
  since_ = 0;
  // Up at once; after a shadow check disagreed, down by at most kDown per recalibration for a
  // while, so the next window (which may not hold that check) does not undo it at once.
  constexpr double kDown = 0.25;
  const double t = calibrate_threshold(records_, target_);
  if (t <= 0) return;
  const double m = -std::log(1 - t);
  set(cooldown_ > 0 ? std::max(m, m_ - kDown) : m);
  if (cooldown_ > 0) --cooldown_;
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
