#include "cache/threshold_tuner.h"

#include <algorithm>
#include <cmath>

namespace glide::cache {

double calibrate_threshold(std::vector<CalibrationRecord> records, double target, double min_weight,
                           double lowest, double share) {
  constexpr double kMax = 1 - 1e-6;
  std::sort(records.begin(), records.end(),
            [](const auto& a, const auto& b) { return a.confidence > b.confidence; });
  const double want = 1 - share * (1 - target);
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
  return enough ? std::clamp(best, lowest, kMax) : -1;
}

ThresholdTuner::ThresholdTuner(double target, double initial, double lowest, double share,
                               std::size_t window, std::size_t recalibrate_every)
    : target_(target),
      lowest_(lowest),
      share_(share),
      window_(window),
      every_(recalibrate_every),
      m_(-std::log(1 - std::clamp(initial, lowest, 1 - 1e-6))),
      threshold_(1 - std::exp(-m_)) {}

void ThresholdTuner::set(double m) {
  m_ = std::clamp(m, -std::log(1 - lowest_), -std::log(1e-6));
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
  const double t = calibrate_threshold(records_, target_, 64, lowest_, share_);
  if (t < 0) return;
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
