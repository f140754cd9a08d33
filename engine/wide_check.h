// A new model's choice between the wide layer and the network alone (NetworkConfig::wide auto).
//
// Neither wins everywhere: the wide layer's start at the labels' centroids is most of the model
// where each label has features of its own (the presets, text), and it costs 3-5 points of P@1
// where labels are facets that several kinds of point share (Debian's tags, recommendations).
// Which case a data set is shows on its own training points: the wide start is scored on points
// held out of its build, the network alone is trained on the rest as a real run would train it,
// and looked at on the same points every quarter epoch until one is clearly ahead. Where the
// network alone wins, the run trains it from the start with the rare labels' path
// (WideMode::kTail).
// docs/training.md, "The wide layer or the network alone".
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "data/dataset.h"
#include "engine/config.h"
#include "engine/setup_log.h"
#include "engine/wide_centroids.h"
#include "engine/wide_layer.h"

namespace glide::engine {

// The wide layer's build options in `net`: its norm power, share rounds and contrast where they
// are set (not auto).
WideOptions wide_options(const NetworkConfig& net);

// Chooses a new wide layer's start on held-out training points as a run would (a setting given
// is its only candidate, and is still scored) and writes the chosen settings into `net`, so that
// a run builds that start without choosing again; `neighbours` gets the choice's label
// neighbours for that build.
WideStartChoice settle_wide_start(NetworkConfig& net, const data::Dataset& train,
                                  LabelNeighbours* neighbours, const SetupLog& log = {});

struct WideCheck {
  enum class Outcome {
    kTooFewPoints,  // under 1,000 training points: none held out, the wide layer kept
    kAloneAhead,    // the network alone scored higher: it trains with the rare labels' path
    kAloneBehind,   // the network alone was too far behind to catch up: kept
    kNoCatchUp,     // the network alone had not caught up at the end of its trial: kept
    kStopped,       // *stop was set during the trial: kept
  };
  Outcome outcome = Outcome::kTooFewPoints;
  bool keep = true;
  WideStartChoice start;  // the wide start's choice, with every candidate's held-out scores
  // The chosen start's held-out P@1 and P@5, and the network alone's at its last look.
  double wide_p1 = 0, wide_p5 = 0;
  double alone_p1 = 0, alone_p5 = 0;
  std::size_t alone_points = 0;  // held-out points of that look
  double alone_epochs = 0;       // epochs the network alone trained (of the training points less
                                 // the held-out ones)
  double seconds = 0;
};

// The trial's rules (docs/training.md has the measurements behind them). The trial lasts the
// first kTrialShare of the run, at most kTrialEpochs; looks come every kLookEpochs, and at least
// kLookBatches batches apart. The network alone wins once its P@1 + P@5 exceeds the wide
// start's. It loses when below kBehindFirst of it at the first look (which scores
// kFirstLookPoints of the held-out points, enough to see that), or when, gaining at every look
// left what it gained since the last, it would still end the trial short of it.
struct WideCheckRules {
  static constexpr double kTrialShare = 0.4, kTrialEpochs = 2, kLookEpochs = 0.25;
  static constexpr std::uint32_t kLookBatches = 50;
  static constexpr double kBehindFirst = 0.5;
  static constexpr std::size_t kFirstLookPoints = 500;
};

// Chooses for a new model whose config.net.wide is auto, on `train` (its whole training set),
// training with config.train on the current TBB arena: sets config.net.wide to on or tail and,
// kept, the wide start's chosen settings (as resolve_wide_start does), so that the run builds
// that start without choosing again; `neighbours` gets the choice's label neighbours for that
// build (FitOptions::wide_neighbours). A config whose wide is not auto is left as it is.
// The trial's network is dropped either way: the run trains its choice from the start, so that
// the path trains from the first batch and the held-out points from the first epoch. `log` gets
// the start's stages (WideLayer::choose_start) and a line for each look at the network alone.
WideCheck check_wide(Config& config, const data::Dataset& train, LabelNeighbours* neighbours,
                     const std::atomic<bool>* stop = nullptr, const SetupLog& log = {});

// "kept" or "dropped" and why, with the scores: what the CLI prints.
std::string describe(const WideCheck& check);

}  // namespace glide::engine
