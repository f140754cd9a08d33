#include "cache/learned_cache.h"

#include <algorithm>
#include <cmath>

#include "cache/lookup_kernels.h"
#include "common/error.h"
#include "common/rng.h"
#include "engine/kernels.h"
#include "engine/params.h"
#include "quant/quantize.h"

namespace glide::cache {

void normalise(const float* x, std::uint32_t n, float* out) {
  double part[4] = {0, 0, 0, 0};  // independent sums: the add latency bounds one
  std::uint32_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (std::uint32_t j = 0; j < 4; ++j) part[j] += double(x[i + j]) * x[i + j];
  for (; i < n; ++i) part[0] += double(x[i]) * x[i];
  const double s = part[0] + part[1] + part[2] + part[3];
  const float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
  for (i = 0; i < n; ++i) out[i] = x[i] * inv;
}

const char* form_name(CacheForm form) {
  return form == CacheForm::kCentroid ? "centroid" : "linear";
}

CacheForm parse_form(const std::string& name) {
  if (name == "linear") return CacheForm::kLinear;
  if (name == "centroid") return CacheForm::kCentroid;
  fail("unknown cache form '" + name + "' (linear or centroid)");
}

const char* confidence_name(Confidence c) {
  return c == Confidence::kRatio ? "ratio" : "cosine";
}

Confidence parse_confidence(const std::string& name) {
  if (name == "ratio") return Confidence::kRatio;
  if (name == "cosine") return Confidence::kCosine;
  fail("unknown cache confidence '" + name + "' (ratio or cosine)");
}

namespace {
// CountSketch of a layer's activations: input i adds sign(i) x[i] to bucket(i) of `sketch`. A fixed
// function of (i, sketch), so a saved cache reads back into the same space.
std::shared_ptr<const CountSketchMap> sketch_map(std::uint32_t dim, std::uint32_t sketch) {
  auto map = std::make_shared<CountSketchMap>();
  map->bucket.resize(dim);
  map->sign.resize(dim);
  for (std::uint32_t i = 0; i < dim; ++i) {
    std::uint64_t state = 0x5eedca5e00000000ull ^ (std::uint64_t{sketch} << 40) ^ i;
    const std::uint64_t h = splitmix64(state);
    map->bucket[i] = static_cast<std::uint32_t>((h >> 1) % sketch);
    map->sign[i] = h & 1 ? -1.0f : 1.0f;
  }
  return map;
}
}  // namespace

CacheModel::CacheModel(std::uint32_t layer, std::uint32_t dim, std::vector<std::uint32_t> hot,
                       CacheForm form, std::uint32_t sketch)
    : layer_(layer),
      dim_(dim),
      sketch_(sketch > 0 && sketch < dim ? sketch : 0),
      form_(form),
      stride_(engine::padded(row_dim())),
      hot_(std::move(hot)),
      w_((hot_.size() + 1) * stride_),
      b_(hot_.size() + 1, 0.0f) {
  if (sketch_) sketch_map_ = sketch_map(dim_, sketch_);
}

void CacheModel::project(const float* act, float* x) const {
  if (!sketch_) {
    normalise(act, dim_, x);
    return;
  }
  std::fill_n(x, sketch_, 0.0f);
  // Branch-free: which activations are zero and which signs are negative is a coin toss per
  // input, and the mispredicted branches of a loop that tested them cost more than the lookup's
  // dots (perf, 1024-wide layer). Adding a zero leaves every sum as it was.
  const std::uint32_t* bucket = sketch_map_->bucket.data();
  const float* sign = sketch_map_->sign.data();
  for (std::uint32_t i = 0; i < dim_; ++i) x[bucket[i]] += sign[i] * act[i];
  normalise(x, sketch_, x);
}

std::size_t CacheModel::bytes() const {
  // The trainer's rows may have spare capacity (CacheTrainer::admit): count the rows in use.
  return (w_.empty() ? 0 : std::size_t{classes()} * stride_) * sizeof(float) +
         b_.size() * sizeof(float) + q_.size() + qscale_.size() * sizeof(float) +
         hot_.size() * sizeof(std::uint32_t);
}

namespace {
// Compact rows are quant::quantize_rows_s8's symmetric int8 rows (scale max |v| / 127, 0 for an
// all-zero row); the input is quantised to 11-bit integers in int16 (scale: max |x| / 1023); the
// dots are exact integers (lookup_kernels.h).
// The largest z[c] over c < n with keep(c), else `floor`. Eight running maxima: with one, the
// latency of each compare-select, not the loads, bounds the loop (the lookup's hot spot).
template <class Keep>
float masked_max(const float* z, std::uint32_t n, Keep keep, float floor) {
  float m[8];
  std::fill_n(m, 8, floor);
  std::uint32_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (std::uint32_t j = 0; j < 8; ++j) m[j] = keep(c + j) && z[c + j] > m[j] ? z[c + j] : m[j];
  for (; c < n; ++c) m[0] = keep(c) && z[c] > m[0] ? z[c] : m[0];
  return *std::max_element(m, m + 8);
}

float quantise_input(const float* v, std::uint32_t n, std::int16_t* q) {
  thread_local std::vector<float> mag;
  mag.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) mag[i] = std::abs(v[i]);
  const float m = masked_max(
      mag.data(), n, [](std::uint32_t) { return true; }, 0.0f);
  const float scale = m > 0 ? m / 1023 : 1, inv = 1 / scale;
  // Round half away from zero inline (lrint is a libm call per element on the request path).
  for (std::uint32_t i = 0; i < n; ++i) {
    const float t = std::clamp(v[i] * inv, -1023.0f, 1023.0f);
    q[i] = static_cast<std::int16_t>(t + (t < 0 ? -0.5f : 0.5f));
  }
  return scale;
}
}  // namespace

void CacheModel::compact() {
  if (form_ != CacheForm::kCentroid || is_compact()) return;
  const std::uint32_t H = classes() - 1;
  qstride_ = (row_dim() + 15) / 16 * 16;
  q_.assign(std::size_t{H} * qstride_ + (H ? 0 : 1), 0);  // never empty once compact
  qscale_.resize(H);
  quant::quantize_rows_s8(w_.data(), H, row_dim(), stride_, quant::Granularity::kRow, q_.data(),
                          qstride_, qscale_.data());
  w_ = AlignedArray<float>();
  b_.clear();
  b_.shrink_to_fit();
}

void CacheModel::logits(const float* x, float* z) const {
  const engine::Kernels& k = engine::kernels();
  const std::uint32_t C = classes();
  for (std::uint32_t c = 0; c < C; ++c) z[c] = k.dot(w_.data() + c * stride_, x, row_dim()) + b_[c];
}

double lowest_threshold(CacheForm form) {
  return form == CacheForm::kCentroid ? 0.0 : 0.5;
}

float ratio_confidence(float best, float runner_up) {
  // Distances 1 - cosine; int8 rows can put a cosine a little above 1.
  const float d1 = std::max(0.0f, 1 - best), d2 = std::max(0.0f, 1 - runner_up);
  // A second label as near as rounding can tell: the nearest label is a coin toss.
  constexpr float kTie = 1e-4f;
  return d2 > kTie ? 1 - d1 / d2 : 0.0f;
}

float CacheModel::lookup(const float* act, std::uint32_t k, engine::Prediction& out, bool* hot,
                         std::vector<float>& scratch, float min_confidence) const {
  const std::uint32_t C = classes();
  scratch.resize(stride_ + C);
  float* x = scratch.data();
  float* z = x + stride_;
  project(act, x);
  const std::uint32_t H = C - 1, kk = std::min(k, H);
  const bool centroid = form_ == CacheForm::kCentroid;
  if (centroid && is_compact()) {
    thread_local std::vector<std::int16_t> qx;
    thread_local std::vector<std::int32_t> dots;
    qx.assign(qstride_, 0);
    dots.resize(H);
    const float xs = quantise_input(x, row_dim(), qx.data());
    lookup_kernels().dots(q_.data(), H, qstride_, qx.data(), qstride_, dots.data());
    for (std::uint32_t c = 0; c < H; ++c) z[c] = static_cast<float>(dots[c]) * qscale_[c] * xs;
    z[H] = -1;  // no "other" class
  } else if (centroid) {
    const engine::Kernels& kern = engine::kernels();
    for (std::uint32_t c = 0; c < H; ++c) z[c] = kern.dot(w_.data() + c * stride_, x, row_dim());
    z[H] = -1;
  } else {
    logits(x, z);
  }
  // Best hot class (the "other" class is C - 1) and, for centroids, the best row of another
  // label (a label may hold several rows): two branch-free passes, the second masked.
  const std::uint32_t n = centroid ? std::max(H, 1u) : C;
  const float top = masked_max(
      z, n, [](std::uint32_t) { return true; }, z[0]);
  const std::uint32_t best = static_cast<std::uint32_t>(std::find(z, z + n, top) - z);
  double sum = 0;
  float runner_up = 0;  // cosines of ReLU activations are >= 0
  if (centroid && H > 1) {
    const std::uint32_t label = hot_[best];
    const std::uint32_t* hot = hot_.data();
    runner_up = masked_max(
        z, H, [&](std::uint32_t c) { return hot[c] != label; }, 0.0f);
  } else if (!centroid) {
    for (std::uint32_t c = 0; c < C; ++c) sum += std::exp(double(z[c] - z[best]));
  }
  // Linear: exp(z_best - z_best) / sum. Centroid: the ratio test.
  const float conf = !centroid                           ? static_cast<float>(1.0 / sum)
                     : confidence_ == Confidence::kRatio ? ratio_confidence(z[best], runner_up)
                                                         : z[best];
  *hot = best < H && kk > 0 && (!centroid || conf > 0);
  if (!*hot) return conf;
  out.labels.clear();
  out.scores.clear();
  if (conf < min_confidence) {
    out.labels.push_back(hot_[best]);
    out.scores.push_back(centroid ? conf : static_cast<float>(1.0 / sum));
    return conf;
  }
  // The top kk hot classes by logit (ties by label id), by insertion into a sorted list of kk:
  // k is small, so one pass beats sorting an index of all H classes.
  std::vector<std::uint32_t>& order = out.labels;  // reuse as index buffer
  auto before = [&](std::uint32_t a, std::uint32_t b) {
    return z[a] > z[b] || (z[a] == z[b] && hot_[a] < hot_[b]);
  };
  // A label with several rows (centroids) appears once, with its best row.
  order.clear();
  for (std::uint32_t c = 0; c < H; ++c) {
    if (order.size() == kk && !before(c, order.back())) continue;
    const auto same = std::find_if(order.begin(), order.end(),
                                   [&](std::uint32_t o) { return hot_[o] == hot_[c]; });
    if (same != order.end()) {
      if (!before(c, *same)) continue;
      order.erase(same);
    } else if (order.size() == kk) {
      order.pop_back();
    }
    order.insert(std::upper_bound(order.begin(), order.end(), c, before), c);
  }
  for (std::uint32_t& c : order) {
    out.scores.push_back(centroid ? z[c]
                                  : static_cast<float>(std::exp(double(z[c] - z[best])) / sum));
    c = hot_[c];
  }
  return conf;
}

CacheModel CacheModel::from_parameters(std::uint32_t layer, std::uint32_t dim,
                                       std::vector<std::uint32_t> hot,
                                       std::span<const float> weights, std::span<const float> bias,
                                       CacheForm form, std::uint32_t sketch) {
  CacheModel m(layer, dim, std::move(hot), form, sketch);
  const std::uint32_t C = m.classes(), R = m.row_dim();
  if (weights.size() != std::size_t{C} * R || bias.size() != C)
    fail("cache of layer " + std::to_string(layer) + ": parameters do not match its shape");
  for (std::uint32_t c = 0; c < C; ++c)
    std::copy_n(weights.data() + std::size_t{c} * R, R, m.w_.data() + c * m.stride_);
  std::copy(bias.begin(), bias.end(), m.b_.begin());
  return m;
}

CacheTrainer::CacheTrainer(std::uint32_t layer, std::uint32_t dim, CacheOptions options)
    : options_(options),
      model_(layer, dim, {}, options.form,
             options.form == CacheForm::kCentroid ? options.sketch : 0),
      next_refresh_(256) {
  x_.resize(engine::padded(model_.row_dim()));
  model_.confidence_ = options.confidence;
}

CacheTrainer::CacheTrainer(const CacheState& state, CacheOptions options)
    : options_(options),
      model_(*state.model),
      examples_(state.model->examples),
      counted_(state.model->examples) {
  x_.resize(engine::padded(model_.row_dim()));
  model_.confidence_ = options.confidence;
  for (const auto& [label, count] : state.counts) counts_[label] = count;
  for (std::uint32_t c = 0; c < model_.hot_.size(); ++c) rows_of_[model_.hot_[c]].push_back(c);
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
  const auto it = rows_of_.find(label);
  std::uint32_t y = it == rows_of_.end() ? other : it->second[0];
  model_.project(act, x_.data());
  if (model_.form_ == CacheForm::kCentroid) {
    if (y == other) {
      y = admit(label);
    } else {
      // The label's nearest row learns the example, unless the label may take another row and
      // either none of its rows is near (cosine below join_cosine) or another label's row is
      // nearer, so the cache would answer this input wrongly: inputs the model maps to one label
      // can lie far apart, and one mean of them would be near none. A popular input its label's
      // mean misses thus gets a row of its own and hits from its next request.
      const engine::Kernels& k = engine::kernels();
      float best = -2;
      for (const std::uint32_t r : it->second) {
        const float cos =
            k.dot(model_.w_.data() + std::size_t{r} * model_.stride_, x_.data(), model_.row_dim());
        if (cos > best) best = cos, y = r;
      }
      if (it->second.size() < options_.rows_per_label && model_.hot_.size() < options_.hot_labels &&
          (best < options_.join_cosine || nearer_row_of_another_label(label, best)))
        y = append_row(label);
    }
    if (y == model_.classes() - 1) return;
    // The row becomes the normalised running mean of its examples (the last 32 or so).
    const std::uint32_t n = seen_[y] = std::min<std::uint32_t>(seen_[y] + 1, 32);
    float* w = model_.w_.data() + y * model_.stride_;
    for (std::uint32_t i = 0; i < model_.row_dim(); ++i) w[i] += (x_[i] - w[i]) / n;
    normalise(w, model_.row_dim(), w);
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
    k.axpy(-options_.lr * g, x_.data(), model_.w_.data() + c * model_.stride_, model_.row_dim());
    model_.b_[c] -= options_.lr * g;
  }
}

bool CacheTrainer::nearer_row_of_another_label(std::uint32_t label, float cosine) const {
  const engine::Kernels& k = engine::kernels();
  const std::uint32_t H = model_.classes() - 1;
  for (std::uint32_t r = 0; r < H; ++r)
    if (model_.hot_[r] != label && k.dot(model_.w_.data() + std::size_t{r} * model_.stride_,
                                         x_.data(), model_.row_dim()) > cosine)
      return true;
  return false;
}

std::uint32_t CacheTrainer::admit(std::uint32_t label) {
  CacheModel& m = model_;
  const std::uint32_t C = m.classes(), other = C - 1;
  if (!options_.admit_early || m.form_ != CacheForm::kCentroid || other >= options_.hot_labels)
    return other;
  const auto it = counts_.find(label);
  if (it == counts_.end() || it->second < options_.min_count) return other;
  return append_row(label);
}

std::uint32_t CacheTrainer::append_row(std::uint32_t label) {
  CacheModel& m = model_;
  const std::uint32_t C = m.classes(), other = C - 1;
  // Rows grow by doubling (amortised O(width) per admission); the new label takes the "other"
  // row's place (zero: unused by centroids) and "other" moves one row down.
  if (m.w_.size() < std::size_t{C + 1} * m.stride_) {
    AlignedArray<float> grown(std::size_t{std::max(C + 1, 2 * C)} * m.stride_);
    std::copy_n(m.w_.data(), std::size_t{C} * m.stride_, grown.data());
    m.w_ = std::move(grown);
  }
  float* o = m.w_.data() + std::size_t{other} * m.stride_;
  std::copy_n(o, m.stride_, o + m.stride_);
  std::fill_n(o, m.stride_, 0.0f);
  m.b_.push_back(m.b_[other]);
  m.b_[other] = 0;
  m.hot_.push_back(label);
  seen_.resize(C + 1, 0);
  seen_[C] = seen_[other];
  seen_[other] = 0;
  rows_of_[label].push_back(other);
  return other;
}

void CacheTrainer::rebuild(const std::vector<std::uint32_t>& labels) {
  // Labels that stay hot keep every row they learned; new ones get one row at zero.
  std::vector<std::uint32_t> hot;
  std::vector<std::uint32_t> from;  // old row of each new row (kNoRow: a new label's)
  constexpr std::uint32_t kNoRow = ~std::uint32_t{0};
  for (const std::uint32_t label : labels) {
    const auto it = rows_of_.find(label);
    if (it == rows_of_.end()) {
      hot.push_back(label);
      from.push_back(kNoRow);
      continue;
    }
    for (const std::uint32_t r : it->second) {
      hot.push_back(label);
      from.push_back(r);
    }
  }
  CacheModel fresh(model_.layer_, model_.dim_, std::move(hot), model_.form_, model_.sketch_);
  fresh.confidence_ = model_.confidence_;
  std::vector<std::uint32_t> seen(fresh.classes(), 0);
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> rows_of;
  for (std::uint32_t c = 0; c + 1 < fresh.classes(); ++c) {
    rows_of[fresh.hot_[c]].push_back(c);
    if (from[c] == kNoRow) continue;
    std::copy_n(model_.w_.data() + from[c] * model_.stride_, model_.stride_,
                fresh.w_.data() + c * fresh.stride_);
    fresh.b_[c] = model_.b_[from[c]];
    seen[c] = from[c] < seen_.size() ? seen_[from[c]] : 0;
  }
  seen_ = std::move(seen);
  const std::uint32_t old_other = model_.classes() - 1, new_other = fresh.classes() - 1;
  std::copy_n(model_.w_.data() + old_other * model_.stride_, model_.stride_,
              fresh.w_.data() + new_other * fresh.stride_);
  fresh.b_[new_other] = model_.b_[old_other];
  model_ = std::move(fresh);
  rows_of_ = std::move(rows_of);
}

void CacheTrainer::refresh_hot_set() {
  std::vector<std::pair<double, std::uint32_t>> ranked;
  ranked.reserve(counts_.size());
  for (const auto& [label, count] : counts_)
    if (count >= options_.min_count) ranked.push_back({count, label});
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  // The most popular labels, while their rows (as many as each has now, at least one) fit.
  std::vector<std::uint32_t> hot;
  std::size_t rows = 0;
  for (const auto& [count, label] : ranked) {
    const auto it = rows_of_.find(label);
    const std::size_t need = it == rows_of_.end() ? 1 : it->second.size();
    if (rows + need > options_.hot_labels) break;
    rows += need;
    hot.push_back(label);
  }
  std::sort(hot.begin(), hot.end());
  rebuild(hot);
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

}  // namespace glide::cache
