#include "engine/wide_check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "engine/evaluator.h"
#include "engine/fit.h"
#include "engine/network.h"
#include "engine/output_sampler.h"
#include "engine/trainer.h"

namespace glide::engine {

WideOptions wide_options(const NetworkConfig& net) {
  WideOptions o{.max_per_label = net.wide_max_per_label,
                .min_weight = static_cast<float>(net.wide_min_weight),
                .init_scale = static_cast<float>(net.wide_init)};
  if (net.wide_norm_power != kWideNormPowerAuto)
    o.norm_power = static_cast<float>(net.wide_norm_power);
  if (net.wide_share_rounds != kWideShareRoundsAuto)
    o.share_rounds = static_cast<std::uint32_t>(net.wide_share_rounds);
  if (net.wide_contrast != kWideContrastAuto) o.contrast = static_cast<float>(net.wide_contrast);
  if (net.wide == WideMode::kTail) {
    // The rare labels' path: their centroids' features, weights at zero; nothing to choose.
    o.max_points = net.wide_tail_points;
    o.init_scale = 0;
    o.norm_power = 1;
    o.share_rounds = 0;
    o.contrast = 0;
  }
  return o;
}

WideStartChoice settle_wide_start(NetworkConfig& net, const data::Dataset& train,
                                  LabelNeighbours* neighbours, const SetupLog& log) {
  const WideStartChoice c = WideLayer::choose_start(
      train, net.num_features, net.num_labels, wide_options(net),
      net.wide_norm_power == kWideNormPowerAuto, net.wide_share_rounds == kWideShareRoundsAuto,
      net.wide_contrast == kWideContrastAuto, neighbours, log);
  net.wide_norm_power = c.norm_power;
  net.wide_share_rounds = c.share_rounds;
  net.wide_contrast = c.contrast;
  return c;
}

namespace {

template <class T, std::size_t N>
std::size_t index_of(const T (&values)[N], T v) {
  return static_cast<std::size_t>(std::find(std::begin(values), std::end(values), v) -
                                  std::begin(values));
}

// Trains the network alone on the training points less the held-out ones, as a run of
// config.train would (its lr schedule planned over all its epochs), and looks at it on the
// held-out points until the rules decide. Fills the alone_* fields, outcome and keep.
void trial(const Config& config, const data::Dataset& train, std::span<const std::size_t> held,
           const std::atomic<bool>* stop, const SetupLog& log, WideCheck& out) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<bool> is_held(train.num_points(), false);
  for (const std::size_t i : held) is_held[i] = true;
  std::vector<std::size_t> rest;
  rest.reserve(train.num_points() - held.size());
  for (std::size_t i = 0; i < train.num_points(); ++i)
    if (!is_held[i]) rest.push_back(i);
  const data::Dataset fit_set = train.subset(rest), held_set = train.subset(held);

  Config alone = config;
  alone.net.wide = WideMode::kOff;
  alone.train.max_seconds = 0;  // the trial is setup: the run's time budget starts after it
  alone.train.eval_every = 0;
  Network net(alone.net);
  Trainer trainer(net, alone.train, make_training_sampler(alone, net, false));
  FitOptions fo;
  fo.stop = stop;
  FitRun run(net, trainer, fit_set, alone.train, fo);

  using Rules = WideCheckRules;
  const double wide_score = out.wide_p1 + out.wide_p5;
  const double end = std::min(Rules::kTrialEpochs, Rules::kTrialShare * alone.train.epochs);
  // Looks a quarter epoch apart, and at least kLookBatches batches: on a small set a quarter
  // epoch is a handful of updates, too few to say how the network alone will do.
  const double step =
      std::max(Rules::kLookEpochs, static_cast<double>(Rules::kLookBatches) * alone.train.batch /
                                       static_cast<double>(fit_set.num_points()));
  double next_look = std::min(step, end), last_score = 0;
  bool first = true;
  while (!run.done()) {
    run.step();
    if (stop && stop->load()) break;
    const double epochs = run.progress().epoch;
    if (epochs < next_look && !run.done()) continue;
    const bool last = epochs >= end;
    const std::size_t points = first && !last ? Rules::kFirstLookPoints : 0;
    const EvalResult r = evaluate(net, held_set, EvalMode::kExact, nullptr, points);
    out.alone_p1 = r.precision[0];
    out.alone_p5 = r.precision[4];
    out.alone_points = r.points;
    out.alone_epochs = epochs;
    if (log) {
      char line[160];
      std::snprintf(line, sizeof line,
                    "network alone after %.2f epoch(s) (%s): P@1 %.4f / P@5 %.4f on %zu held-out "
                    "points",
                    epochs, seconds_text(t0).c_str(), out.alone_p1, out.alone_p5, out.alone_points);
      log(line);
    }
    const double score = out.alone_p1 + out.alone_p5;
    // The first look scores a sample of the points: it can only find the network far behind.
    if ((!first || last) && score > wide_score) {
      out.outcome = WideCheck::Outcome::kAloneAhead;
      out.keep = false;
      return;
    }
    if (last) {
      out.outcome = WideCheck::Outcome::kNoCatchUp;
      return;
    }
    // Behind: far below at the first look, or, after it, short of the wide start even if it kept
    // gaining what it gained since the last look at every look left (learning curves flatten,
    // so that overstates what it will gain).
    const double looks_left = std::ceil((end - epochs) / step);
    const bool behind = first ? score < Rules::kBehindFirst * wide_score
                              : score + (score - last_score) * looks_left < wide_score;
    if (behind) {
      out.outcome = WideCheck::Outcome::kAloneBehind;
      return;
    }
    first = false;
    last_score = score;
    next_look = std::min(next_look + step, end);
  }
  out.outcome = WideCheck::Outcome::kStopped;
}

}  // namespace

WideCheck check_wide(Config& config, const data::Dataset& train, LabelNeighbours* neighbours,
                     const std::atomic<bool>* stop, const SetupLog& log) {
  WideCheck out;
  NetworkConfig& net = config.net;
  if (net.wide != WideMode::kAuto) {
    out.keep = has_wide(net);
    return out;
  }
  check_training_set(train, net);
  const auto t0 = std::chrono::steady_clock::now();
  out.start = settle_wide_start(net, train, neighbours, log);
  if (out.start.held_out > 0) {
    const std::size_t r = index_of(kShareRounds, out.start.share_rounds),
                      c = index_of(kContrasts, out.start.contrast),
                      p = index_of(kNormPowers, out.start.norm_power);
    out.wide_p1 = out.start.p_at_1[r][c][p];
    out.wide_p5 = out.start.p_at_5[r][c][p];
    trial(config, train, held_out_points(train.num_points()), stop, log, out);
  }
  net.wide = out.keep ? WideMode::kOn : WideMode::kTail;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::string describe(const WideCheck& c) {
  using O = WideCheck::Outcome;
  if (c.outcome == O::kTooFewPoints)
    return "wide layer kept: too few training points to hold any out for a check against the "
           "network alone";
  char scores[256];
  std::snprintf(scores, sizeof scores,
                "the network alone, after %.2f epoch(s), P@1 %.4f / P@5 %.4f on %zu held-out "
                "training points; the wide start P@1 %.4f / P@5 %.4f on %u",
                c.alone_epochs, c.alone_p1, c.alone_p5, c.alone_points, c.wide_p1, c.wide_p5,
                c.start.held_out);
  char took[64];
  std::snprintf(took, sizeof took, " (check %.1f s)", c.seconds);
  const char* verdict =
      c.outcome == O::kAloneAhead
          ? "wide layer dropped, the network alone ahead; it trains with the rare "
            "labels' path (wide tail)"
      : c.outcome == O::kAloneBehind ? "wide layer kept, the network alone far behind"
      : c.outcome == O::kNoCatchUp
          ? "wide layer kept, the network alone not caught up at the trial's end"
          : "wide layer kept, the check stopped";
  return std::string(verdict) + ": " + scores + took;
}

}  // namespace glide::engine
