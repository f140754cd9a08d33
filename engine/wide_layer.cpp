#include "engine/wide_layer.h"

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "common/error.h"
#include "engine/csr_transpose.h"
#include "engine/validation.h"
#include "engine/wide_centroids.h"

namespace glide::engine {

namespace {

// The five highest (score, label) offered, highest first; equal scores rank the smaller label
// first. One comparison per label offered that does not make it.
struct TopFive {
  std::array<float, 5> scores{};
  std::array<std::uint32_t, 5> labels{};
  std::size_t size = 0;
  void clear() { size = 0; }
  static bool before(float a, std::uint32_t la, float b, std::uint32_t lb) {
    return a > b || (a == b && la < lb);
  }
  void offer(float s, std::uint32_t l) {
    if (size == 5 && !before(s, l, scores[4], labels[4])) return;
    std::size_t at = size < 5 ? size++ : 4;
    for (; at > 0 && before(s, l, scores[at - 1], labels[at - 1]); --at) {
      scores[at] = scores[at - 1];
      labels[at] = labels[at - 1];
    }
    scores[at] = s;
    labels[at] = l;
  }
};

}  // namespace

void WideScores::resize(std::uint32_t labels) {
  if (scores_.size() == labels) return;
  scores_.assign(labels, 0.0f);
  reached_.assign((std::size_t{labels} + 63) / 64, 0);
  labels_.clear();
}

void WideScores::clear() {
  for (const std::uint32_t l : labels_) {
    scores_[l] = 0;
    reached_[l / 64] = 0;
  }
  labels_.clear();
}

WideLayer WideLayer::from_label_entries(
    std::vector<std::vector<std::pair<std::uint32_t, float>>> per_label,
    std::uint32_t num_features) {
  // Feature-major: labels ascending within each feature (the transpose keeps row order).
  WideLayer w;
  w.num_features_ = num_features;
  w.num_labels_ = static_cast<std::uint32_t>(per_label.size());
  std::uint64_t entries = 0;
  for (const auto& list : per_label) entries += list.size();
  w.labels_ = AlignedArray<std::uint32_t>(entries);
  w.weights_ = AlignedArray<float>(entries);
  w.offsets_ = transpose_rows(
      per_label.size(), num_features, [&](std::size_t l) { return per_label[l].size(); },
      [&](std::size_t l, std::size_t k) { return per_label[l][k].first; },
      [&](std::size_t l, std::size_t k, std::uint64_t at) {
        w.labels_[at] = static_cast<std::uint32_t>(l);
        w.weights_[at] = per_label[l][k].second;
      },
      // Each label's list is freed once placed: the lists and the layer are not held whole at once.
      [&](std::size_t l) { std::vector<std::pair<std::uint32_t, float>>().swap(per_label[l]); });
  return w;
}

WideLayer WideLayer::from_centroids(const data::Dataset& train, std::uint32_t num_features,
                                    std::uint32_t num_labels, const WideOptions& options,
                                    const LabelNeighbours* neighbours) {
  if (train.num_features > num_features || train.num_labels > num_labels)
    fail("wide layer: the data's dimensions exceed the model's");
  if (!(options.norm_power >= 0 && options.norm_power <= 1))
    fail("wide layer: the norm power must be in [0, 1], got " + std::to_string(options.norm_power));
  if (!(options.contrast >= 0 && options.contrast <= 1))
    fail("wide layer: the contrast must be in [0, 1], got " + std::to_string(options.contrast));
  LabelEntries per_label = label_sums(train, num_features, num_labels, options, {});
  if (options.max_points > 0) {
    std::vector<std::uint32_t> counts = train.label_counts();
    counts.resize(num_labels, 0);
    for (std::uint32_t l = 0; l < num_labels; ++l)
      if (counts[l] > options.max_points) LabelEntries::value_type().swap(per_label[l]);
  }
  if (options.contrast > 0)
    contrast_with_neighbours(per_label, num_features, options.contrast, options,
                             neighbours && !neighbours->count.empty() ? neighbours : nullptr);
  const std::vector<double> norms = norms_of(per_label);
  const double median = options.reference_norm > 0 ? options.reference_norm : median_of(norms);
  for (std::uint32_t l = 0; l < num_labels; ++l) {
    const auto s =
        static_cast<float>(start_scale(norms[l], median, options.norm_power, options.init_scale));
    for (auto& e : per_label[l]) e.second *= s;
  }
  return from_label_entries(std::move(per_label), num_features);
}

double WideLayer::median_norm(const data::Dataset& train, std::uint32_t num_features,
                              std::uint32_t num_labels, const WideOptions& options) {
  if (train.num_features > num_features || train.num_labels > num_labels)
    fail("wide layer: the data's dimensions exceed the model's");
  return median_of(norms_of(label_sums(train, num_features, num_labels, options, {})));
}

std::vector<std::size_t> held_out_points(std::size_t n) {
  const std::size_t count = std::min<std::size_t>(2000, n / 10);
  if (count < 100) return {};
  return evenly_spaced(n, count);
}

WideStartChoice WideLayer::choose_start(const data::Dataset& train, std::uint32_t num_features,
                                        std::uint32_t num_labels, const WideOptions& options,
                                        bool choose_power, bool choose_rounds, bool choose_contrast,
                                        LabelNeighbours* neighbours_out, const SetupLog& log) {
  if (train.num_features > num_features || train.num_labels > num_labels)
    fail("wide layer: the data's dimensions exceed the model's");
  constexpr std::size_t kPowers = WideStartChoice::kPowers, kRounds = WideStartChoice::kRounds,
                        kContrastCount = WideStartChoice::kContrastCount;
  // A fixed setting must be one of the candidates, or nothing would be scored.
  if (!choose_power && std::find(std::begin(kNormPowers), std::end(kNormPowers),
                                 options.norm_power) == std::end(kNormPowers))
    fail("wide layer: the norm power to keep must be 0, 0.25, 0.5, 0.75 or 1, got " +
         std::to_string(options.norm_power));
  if (!choose_rounds && std::find(std::begin(kShareRounds), std::end(kShareRounds),
                                  options.share_rounds) == std::end(kShareRounds))
    fail("wide layer: the share rounds to keep must be 0, 1 or 2, got " +
         std::to_string(options.share_rounds));
  if (!choose_contrast && std::find(std::begin(kContrasts), std::end(kContrasts),
                                    options.contrast) == std::end(kContrasts))
    fail("wide layer: the contrast to keep must be 0 or 1, got " +
         std::to_string(options.contrast));
  WideStartChoice choice;
  choice.norm_power = choose_power ? 1.0f : options.norm_power;
  choice.share_rounds = choose_rounds ? 0 : options.share_rounds;
  choice.contrast = choose_contrast ? 0.0f : options.contrast;
  const std::vector<std::size_t> held_points = held_out_points(train.num_points());
  const std::size_t held_count = held_points.size();
  if (held_count == 0) return choice;
  std::vector<bool> held(train.num_points(), false);
  for (const std::size_t i : held_points) held[i] = true;

  std::uint64_t best_1 = 0, best_5 = 0;
  bool any = false;
  // Every round's centroids from one run of the rounds (only the fixed one's when not choosing).
  WideOptions build = options;
  build.share_rounds =
      choose_rounds ? kShareRounds[std::size(kShareRounds) - 1] : options.share_rounds;
  // Rounds that cannot run on these data: choose among the powers without them.
  if (choose_rounds) {
    choice.rounds_not_tried = share_rounds_obstacle(train, options);
    if (!choice.rounds_not_tried.empty()) build.share_rounds = 0;
  }
  // Scores the held-out points with one candidate's sums (rounds kShareRounds[r], contrast
  // kContrasts[c]) at every power tried.
  const auto score = [&](std::size_t r, std::size_t c, LabelEntries&& sums) {
    const std::vector<double> norms = norms_of(sums);
    const double median = median_of(norms);
    // The labels with entries alone, by their rank among them (ids in the same order, so ties
    // rank alike): the scores and factors read at random per point then take a third of the
    // memory at amazon670k.
    const std::vector<std::uint32_t> with_entries = labels_with_entries(sums);
    LabelEntries ranked_sums;
    ranked_sums.reserve(with_entries.size());
    for (const std::uint32_t l : with_entries) ranked_sums.push_back(std::move(sums[l]));
    LabelEntries().swap(sums);
    const WideLayer raw = from_label_entries(std::move(ranked_sums), num_features);
    std::array<bool, kPowers> tried{};
    for (std::size_t p = 0; p < kPowers; ++p)
      tried[p] = choose_power || kNormPowers[p] == options.norm_power;
    std::vector<std::array<float, kPowers>> factor(with_entries.size());
    for (std::size_t k = 0; k < with_entries.size(); ++k)
      for (std::size_t p = 0; p < kPowers; ++p)
        factor[k][p] =
            static_cast<float>(start_scale(norms[with_entries[k]], median, kNormPowers[p], 1.0));

    struct Local {
      std::array<std::uint64_t, kPowers> hits_at_1{}, hits_at_5{};
      WideScores scores;
      std::array<TopFive, kPowers> top;
    };
    tbb::enumerable_thread_specific<Local> locals;
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, held_count, 16), [&](const auto& range) {
      Local& t = locals.local();
      for (std::size_t k = range.begin(); k < range.end(); ++k) {
        const std::size_t i = held_points[k];
        raw.score(train.features(i), t.scores);
        const std::span<const std::uint32_t> truth = train.labels(i);
        for (TopFive& top : t.top) top.clear();
        for (const std::uint32_t l : t.scores.labels()) {
          const float s = t.scores[l];
          for (std::size_t p = 0; p < kPowers; ++p)
            if (tried[p]) t.top[p].offer(s * factor[l][p], l);
        }
        for (std::size_t p = 0; p < kPowers; ++p) {
          if (!tried[p]) continue;
          const TopFive& top = t.top[p];
          for (std::size_t rank = 0; rank < top.size; ++rank) {
            const std::uint32_t label = with_entries[top.labels[rank]];
            if (std::find(truth.begin(), truth.end(), label) == truth.end()) continue;
            ++t.hits_at_5[p];
            if (rank == 0) ++t.hits_at_1[p];
          }
        }
      }
    });
    std::array<std::uint64_t, kPowers> hits_at_1{}, hits_at_5{};
    for (const Local& t : locals)
      for (std::size_t p = 0; p < kPowers; ++p) {
        hits_at_1[p] += t.hits_at_1[p];
        hits_at_5[p] += t.hits_at_5[p];
      }
    // The highest P@1 wins, then P@5, then fewer rounds, then no contrast, then the larger
    // power (the order the candidates come in).
    for (std::size_t p = kPowers; p-- > 0;) {
      if (!tried[p]) continue;
      choice.tried[r][c][p] = true;
      choice.p_at_1[r][c][p] = static_cast<float>(double(hits_at_1[p]) / double(held_count));
      choice.p_at_5[r][c][p] = static_cast<float>(double(hits_at_5[p]) / double(5 * held_count));
      if (!any || hits_at_1[p] > best_1 || (hits_at_1[p] == best_1 && hits_at_5[p] > best_5)) {
        any = true;
        best_1 = hits_at_1[p];
        best_5 = hits_at_5[p];
        choice.norm_power = kNormPowers[p];
        choice.share_rounds = kShareRounds[r];
        choice.contrast = kContrasts[c];
      }
    }
  };
  LabelNeighbours neighbours;
  auto stage = std::chrono::steady_clock::now();
  label_sums_by_round(
      train, num_features, num_labels, build, held, true,
      [&](std::uint32_t rounds, LabelEntries&& sums) {
        const std::size_t r = static_cast<std::size_t>(
            std::find(std::begin(kShareRounds), std::end(kShareRounds), rounds) -
            std::begin(kShareRounds));
        if (r == kRounds || (!choose_rounds && rounds != options.share_rounds)) return true;
        const auto tried = [&](std::size_t c) {
          return choose_contrast || kContrasts[c] == options.contrast;
        };
        // The contrasted candidates first, from the sums, which the one without
        // contrast then takes; scored in candidate order (ties go to the first).
        std::array<LabelEntries, kContrastCount> contrasted;
        for (std::size_t c = 0; c < kContrastCount; ++c) {
          if (!tried(c) || kContrasts[c] == 0) continue;
          // One search serves every rounds' candidate: the first rounds'
          // neighbours stand for the others' (and the final build's).
          if (neighbours.count.empty()) {
            neighbours = nearest_labels(sums, num_features);
            if (log)
              log("wide start: the labels' nearest labels found, " + seconds_text(stage) +
                  " (the centroids' sums included)");
            stage = std::chrono::steady_clock::now();
          }
          contrasted[c] =
              subtract_neighbours(sums, neighbours, num_features, kContrasts[c], options);
        }
        for (std::size_t c = 0; c < kContrastCount; ++c)
          if (tried(c)) score(r, c, kContrasts[c] > 0 ? std::move(contrasted[c]) : std::move(sums));
        if (log) {
          float best = 0;
          for (std::size_t c = 0; c < kContrastCount; ++c)
            for (std::size_t p = 0; p < kPowers; ++p)
              if (choice.tried[r][c][p]) best = std::max(best, choice.p_at_1[r][c][p]);
          char line[160];
          std::snprintf(line, sizeof line,
                        "wide start: %u share round(s) scored on %zu held-out points, best P@1 "
                        "%.4f, ",
                        rounds, held_count, static_cast<double>(best));
          log(line + seconds_text(stage));
        }
        stage = std::chrono::steady_clock::now();
        // More rounds go on from these sums: once a round wins nothing over fewer, the next
        // is not tried (the held-out P@1 has peaked on every data set measured).
        return !choose_rounds || choice.share_rounds == rounds;
      });
  choice.held_out = static_cast<std::uint32_t>(held_count);
  if (neighbours_out) *neighbours_out = std::move(neighbours);
  return choice;
}

WideLayer WideLayer::label_slice(std::uint32_t begin, std::uint32_t end) const {
  if (begin > end || end > num_labels_)
    fail("wide layer: label range [" + std::to_string(begin) + ", " + std::to_string(end) +
         ") is outside its " + std::to_string(num_labels_) + " labels");
  const std::span<const float> w = weights();
  WideLayer out;
  out.num_features_ = num_features_;
  out.num_labels_ = end - begin;
  out.offsets_.assign(std::size_t{num_features_} + 1, 0);
  // A feature's labels ascend: its slice is one run.
  const auto run = [&](std::uint32_t f) {
    const auto first = labels_.begin() + offsets_[f], last = labels_.begin() + offsets_[f + 1];
    const auto lo = std::lower_bound(first, last, begin);
    return std::pair(lo, std::lower_bound(lo, last, end));
  };
  for (std::uint32_t f = 0; f < num_features_; ++f) {
    const auto [lo, hi] = run(f);
    out.offsets_[f + 1] = out.offsets_[f] + static_cast<std::uint64_t>(hi - lo);
  }
  out.labels_ = AlignedArray<std::uint32_t>(out.offsets_.back());
  out.weights_ = AlignedArray<float>(out.offsets_.back());
  for (std::uint32_t f = 0; f < num_features_; ++f) {
    const auto [lo, hi] = run(f);
    std::uint64_t at = out.offsets_[f];
    for (auto it = lo; it != hi; ++it, ++at) {
      out.labels_[at] = *it - begin;
      out.weights_[at] = w[static_cast<std::size_t>(it - labels_.begin())];
    }
  }
  return out;
}

WideLayer WideLayer::from_arrays(std::uint32_t num_features, std::uint32_t num_labels,
                                 std::vector<std::uint64_t> offsets,
                                 AlignedArray<std::uint32_t> labels, AlignedArray<float> weights,
                                 const std::string& what) {
  if (offsets.size() != std::size_t{num_features} + 1)
    fail(what, "has " + std::to_string(offsets.size()) + " offsets for " +
                   std::to_string(num_features) + " features (expected features + 1)");
  if (labels.size() != weights.size())
    fail(what, "has " + std::to_string(labels.size()) + " labels but " +
                   std::to_string(weights.size()) + " weights");
  if (offsets.front() != 0 || offsets.back() != labels.size())
    fail(what,
         "offsets must run from 0 to the entry count (" + std::to_string(labels.size()) + ")");
  for (std::size_t f = 0; f < num_features; ++f) {
    if (offsets[f + 1] < offsets[f]) fail(what, "offsets decrease at feature " + std::to_string(f));
    for (std::uint64_t e = offsets[f]; e < offsets[f + 1]; ++e) {
      if (labels[e] >= num_labels)
        fail(what, "label " + std::to_string(labels[e]) + " of feature " + std::to_string(f) +
                       " is out of range (" + std::to_string(num_labels) + " labels)");
      if (e > offsets[f] && labels[e] <= labels[e - 1])
        fail(what, "the labels of feature " + std::to_string(f) + " are not ascending");
      if (!std::isfinite(weights[e]))
        fail(what, "weight of feature " + std::to_string(f) + ", label " +
                       std::to_string(labels[e]) + " is not finite");
    }
  }
  WideLayer w;
  w.num_features_ = num_features;
  w.num_labels_ = num_labels;
  w.offsets_ = std::move(offsets);
  w.labels_ = std::move(labels);
  w.weights_ = std::move(weights);
  return w;
}

void WideLayer::score(const data::SparseView& x, WideScores& out) const {
  sync_feature_major();
  out.resize(num_labels_);
  out.clear();
  for (std::size_t q = 0; q < x.size(); ++q) {
    const std::uint32_t f = x.ids[q];
    if (f >= num_features_) continue;  // the model's features; predictors check inputs first
    const float v = x.values[q];
    for (std::uint64_t e = offsets_[f]; e < offsets_[f + 1]; ++e) {
      const std::uint32_t l = labels_[e];
      const std::uint64_t bit = std::uint64_t{1} << (l % 64);
      if (!(out.reached_[l / 64] & bit)) {
        out.reached_[l / 64] |= bit;
        out.labels_.push_back(l);
      }
      out.scores_[l] += v * weights_[e];
    }
  }
}

void WideLayer::seek(const data::SparseView& x, std::uint32_t j0, std::uint64_t* cursors) const {
  sync_feature_major();
  for (std::size_t q = 0; q < x.size(); ++q) {
    const std::uint32_t f = x.ids[q];
    if (f >= num_features_) {  // as score(): no entries
      cursors[q] = 0;
      continue;
    }
    const auto first = labels_.begin() + static_cast<std::ptrdiff_t>(offsets_[f]),
               last = labels_.begin() + static_cast<std::ptrdiff_t>(offsets_[f + 1]);
    cursors[q] =
        j0 == 0 ? offsets_[f]
                : static_cast<std::uint64_t>(std::lower_bound(first, last, j0) - labels_.begin());
  }
}

bool WideLayer::add_block(const data::SparseView& x, std::uint32_t j0, std::uint32_t n,
                          std::uint64_t* cursors, float* row, float* sum) const {
  const std::uint32_t end = j0 + n;
  bool reached = false;
  for (std::size_t q = 0; q < x.size(); ++q) {
    const std::uint32_t f = x.ids[q];
    if (f >= num_features_) continue;
    std::uint64_t e = cursors[q];
    const std::uint64_t stop = offsets_[f + 1];
    if (e == stop || labels_[e] >= end) continue;
    if (!reached) {
      std::fill(sum, sum + n, 0.0f);
      reached = true;
    }
    const float v = x.values[q];
    for (; e < stop && labels_[e] < end; ++e) sum[labels_[e] - j0] += v * weights_[e];
    cursors[q] = e;
  }
  if (reached)
    for (std::uint32_t i = 0; i < n; ++i) row[i] += sum[i];
  return reached;
}

std::uint64_t WideLayer::entries_of(const data::SparseView& x) const {
  std::uint64_t n = 0;
  for (const std::uint32_t f : x.ids)
    if (f < num_features_) n += offsets_[f + 1] - offsets_[f];
  return n;
}

void WideLayer::ensure_optimizer_state() {
  if (sums_.size() != weights_.size()) sums_ = AlignedArray<float>(weights_.size());
}

template <class Fn>
void WideLayer::for_each_entry(Fn&& fn) const {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, label_entries_.size(), 1 << 16),
                    [&](const auto& r) {
                      for (std::size_t e = r.begin(); e < r.end(); ++e)
                        fn(e, offsets_[label_entries_[e].feature] + label_entries_[e].rank);
                    });
}

void WideLayer::prepare_training() {
  ensure_optimizer_state();
  const bool indexed = label_offsets_.size() == std::size_t{num_labels_} + 1 &&
                       label_entries_.size() == labels_.size();
  if (indexed && label_major_current_) return;
  sync_feature_major();
  if (!indexed) {
    label_entries_ = AlignedArray<LabelEntry>(labels_.size());
    label_offsets_ = transpose_rows(
        num_features_, num_labels_, [&](std::size_t f) { return offsets_[f + 1] - offsets_[f]; },
        [&](std::size_t f, std::size_t k) { return labels_[offsets_[f] + k]; },
        [&](std::size_t f, std::size_t k, std::uint64_t at) {
          label_entries_[at] = {static_cast<std::uint32_t>(f), static_cast<std::uint32_t>(k)};
        });
  }
  if (label_weights_.size() != label_entries_.size()) {
    label_weights_ = AlignedArray<float>(label_entries_.size());
    label_sums_ = AlignedArray<float>(label_entries_.size());
  }
  for_each_entry([&](std::size_t e, std::uint64_t at) {
    label_weights_[e] = weights_[at];
    label_sums_[e] = sums_[at];
  });
  label_major_current_ = true;
}

void WideLayer::end_training() {
  sync_feature_major();
  label_major_current_ = false;
  std::vector<std::uint64_t>().swap(label_offsets_);
  label_entries_ = {};
  label_weights_ = {};
  label_sums_ = {};
}

void WideLayer::sync_feature_major() const {
  if (!feature_major_.stale.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> hold(feature_major_.lock);
  if (!feature_major_.stale.load(std::memory_order_relaxed)) return;
  auto& weights = const_cast<AlignedArray<float>&>(weights_);
  auto& sums = const_cast<AlignedArray<float>&>(sums_);
  // Only train_step (not const) sets the flag, so the layer itself is not a const object.
  // Isolated: while it waits for the copy, this thread must not take another of the caller's
  // tasks, which could score and wait for the lock it holds.
  tbb::this_task_arena::isolate([&] {
    for_each_entry([&](std::size_t e, std::uint64_t at) {
      weights[at] = label_weights_[e];
      sums[at] = label_sums_[e];
    });
  });
  feature_major_.stale.store(false, std::memory_order_release);
}

void WideBatch::build(std::span<const data::SparseView> inputs, std::uint32_t num_features) {
  slot_.resize(num_features, 0);
  for (const std::uint32_t f : features_) slot_[f] = 0;
  features_.clear();
  hit_ranges_.clear();  // add_scores notes this batch's
  offsets_.assign(1, 0);
  for (const data::SparseView& x : inputs)
    for (const std::uint32_t f : x.ids) {
      if (f >= num_features) continue;
      if (slot_[f] == 0) {
        features_.push_back(f);
        slot_[f] = static_cast<std::uint32_t>(features_.size());
        offsets_.push_back(0);
      }
      ++offsets_[slot_[f]];
    }
  for (std::size_t k = 0; k < features_.size(); ++k) offsets_[k + 1] += offsets_[k];
  samples_.resize(offsets_.back());
  values_.resize(offsets_.back());
  std::vector<std::uint32_t> cursor(offsets_.begin(), offsets_.end() - 1);
  for (std::size_t s = 0; s < inputs.size(); ++s) {
    const data::SparseView& x = inputs[s];
    for (std::size_t q = 0; q < x.size(); ++q) {
      if (x.ids[q] >= num_features) continue;
      const std::uint32_t at = cursor[slot_[x.ids[q]] - 1]++;
      samples_[at] = static_cast<std::uint32_t>(s);
      values_[at] = x.values[q];
    }
  }
}

// Label by label: the label's entries whose feature is in the batch reach the samples having it.
// A label that is not shared gathers them in a per-thread vector over the batch's samples, cleared
// only where read (the label's scored samples) in add_scores, kept all zero between labels in
// train_step.

void WideLayer::add_scores(WideBatch& batch, const ActivePairs& pairs, float* z) const {
  if (label_entries_.size() != labels_.size() || !label_major_current_)
    fail("wide layer: prepare_training not called");
  const auto neurons = pairs.neurons();
  const std::uint32_t* rows = pairs.rows();
  batch.hit_ranges_.assign(neurons.size(), {});
  for (std::vector<WideHit>& list : batch.hit_lists_) list.clear();
  tbb::enumerable_thread_specific<std::vector<float>> scratch(pairs.batch(), 0.0f);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, neurons.size(), 32), [&](const auto& r) {
    std::vector<float>& acc = scratch.local();
    std::vector<WideHit>& list = batch.hit_lists_.local();
    for (std::size_t i = r.begin(); i < r.end(); ++i) {
      const std::uint32_t l = neurons[i];
      if (l >= num_labels_) continue;
      const std::size_t first = list.size();
      for (std::uint64_t e = label_offsets_[l]; e < label_offsets_[l + 1]; ++e) {
        const std::uint32_t f = label_entries_[e].feature;
        if (const std::uint32_t k = batch.slot(f)) list.push_back({e, k - 1});
      }
      if (list.size() == first) continue;
      batch.hit_ranges_[i] = {&list, first, list.size()};
      const std::uint64_t beg = pairs.neuron_begin(i), end = pairs.neuron_begin(i + 1);
      // A shared label's slot for sample s is beg + s: its scores go straight to z.
      const bool shared = pairs.shared_index(l) != 0;
      float* out = shared ? z + beg : acc.data();
      if (!shared)
        for (std::uint64_t q = beg; q < end; ++q) acc[rows[q]] = 0;
      for (std::size_t h = first; h < list.size(); ++h) {
        const float w = label_weights_[list[h].at];
        const auto samples = batch.samples(list[h].feature);
        const auto values = batch.values(list[h].feature);
        for (std::size_t j = 0; j < samples.size(); ++j) out[samples[j]] += values[j] * w;
      }
      if (!shared)
        for (std::uint64_t q = beg; q < end; ++q) z[q] += acc[rows[q]];
    }
  });
}

void WideLayer::train_step(const WideBatch& batch, const ActivePairs& pairs, const float* coef,
                           float lr, float eps) {
  prepare_training();
  const auto neurons = pairs.neurons();
  if (batch.hit_ranges_.size() != neurons.size())
    fail("wide layer: train_step without add_scores for the same batch");
  feature_major_.stale.store(true, std::memory_order_release);
  const std::uint32_t* rows = pairs.rows();
  tbb::enumerable_thread_specific<std::vector<float>> scratch(pairs.batch(), 0.0f);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, neurons.size(), 32), [&](const auto& r) {
    std::vector<float>& acc = scratch.local();
    for (std::size_t i = r.begin(); i < r.end(); ++i) {
      const std::span<const WideHit> hits = batch.hits(i);
      if (hits.empty()) continue;
      const std::uint64_t beg = pairs.neuron_begin(i), end = pairs.neuron_begin(i + 1);
      // d loss / d logit(l) per sample: a shared label's are coef[beg + s].
      const bool shared = pairs.shared_index(neurons[i]) != 0;
      const float* grad = shared ? coef + beg : acc.data();
      if (!shared)
        for (std::uint64_t q = beg; q < end; ++q) acc[rows[q]] += coef[q];
      for (const WideHit& h : hits) {
        const auto samples = batch.samples(h.feature);
        const auto values = batch.values(h.feature);
        float g = 0;
        for (std::size_t j = 0; j < samples.size(); ++j) g += values[j] * grad[samples[j]];
        if (g == 0) continue;
        label_sums_[h.at] += g * g;
        label_weights_[h.at] -= lr * g / (std::sqrt(label_sums_[h.at]) + eps);
      }
      if (!shared)
        for (std::uint64_t q = beg; q < end; ++q) acc[rows[q]] = 0;
    }
  });
}

}  // namespace glide::engine
